// Suite 'threadpool': kiln::cpu::parallel_for and the pool's sizing rules
// (kiln/threadpool.h).
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "harness.h"
#include "kiln/threadpool.h"

namespace {

using kiln::cpu::parallel_for;

struct Chunk {
  int64_t begin, end;
  std::thread::id tid;
};

// Runs parallel_for(n, grain) and returns its chunks (sorted by begin).
using Hits = std::vector<std::atomic<int>>;  // value-initialised: all zero

std::vector<Chunk> record(int64_t n, int64_t grain, Hits* hits = nullptr) {
  std::mutex mu;
  std::vector<Chunk> chunks;
  parallel_for(n, grain, [&](int64_t b, int64_t e) {
    if (hits) {
      for (int64_t i = b; i < e; ++i) {
        if (i >= 0 && i < static_cast<int64_t>(hits->size())) (*hits)[static_cast<size_t>(i)].fetch_add(1);
      }
    }
    std::lock_guard<std::mutex> lk(mu);
    chunks.push_back({b, e, std::this_thread::get_id()});
  });
  std::sort(chunks.begin(), chunks.end(), [](const Chunk& a, const Chunk& b) { return a.begin < b.begin; });
  return chunks;
}

// Checks chunks cover [0, n) exactly once, contiguously, each at least min(grain, n) long.
void check_cover(const std::vector<Chunk>& chunks, int64_t n, int64_t grain, int threads, const std::string& ctx) {
  if (n <= 0) {
    KCHECK(chunks.empty()) << ctx << ": fn called for an empty range";
    return;
  }
  KCHECK(!chunks.empty()) << ctx;
  if (chunks.empty()) return;
  KCHECK_EQ(chunks.front().begin, 0) << ctx;
  KCHECK_EQ(chunks.back().end, n) << ctx;
  bool contiguous = true, nonempty = true, long_enough = true;
  for (size_t i = 0; i < chunks.size(); ++i) {
    nonempty = nonempty && chunks[i].end > chunks[i].begin;
    long_enough = long_enough && chunks[i].end - chunks[i].begin >= std::min(std::max<int64_t>(grain, 1), n);
    if (i > 0) contiguous = contiguous && chunks[i].begin == chunks[i - 1].end;
  }
  KCHECK(contiguous) << ctx << ": chunks overlap or leave gaps";
  KCHECK(nonempty) << ctx << ": empty chunk";
  KCHECK(long_enough) << ctx << ": chunk shorter than the grain";
  KCHECK(static_cast<int>(chunks.size()) <= threads) << ctx << ": " << chunks.size() << " chunks on " << threads
                                                      << " threads";
  std::set<std::thread::id> tids;
  for (const Chunk& c : chunks) tids.insert(c.tid);
  KCHECK_EQ(tids.size(), chunks.size()) << ctx << ": two chunks ran on one thread";
}

KTEST(threadpool, covers_every_index_exactly_once) {
  const int saved = kiln::cpu::num_threads();
  for (int threads : {1, 2, 3, 4, 7, 16}) {
    kiln::cpu::set_num_threads(threads);
    KCHECK_EQ(kiln::cpu::num_threads(), threads);
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(2), int64_t(3), int64_t(5), int64_t(15), int64_t(16),
                      int64_t(17), int64_t(100), int64_t(1000), int64_t(4097), int64_t(65536), int64_t(100003)}) {
      for (int64_t grain : {int64_t(0), int64_t(1), int64_t(2), int64_t(7), int64_t(64), int64_t(4096),
                            int64_t(1) << 20}) {
        Hits hits(static_cast<size_t>(n));
        const auto chunks = record(n, grain, &hits);
        const std::string ctx = "threads=" + std::to_string(threads) + " n=" + std::to_string(n) +
                                " grain=" + std::to_string(grain);
        check_cover(chunks, n, grain, threads, ctx);
        bool once = true;
        for (auto& h : hits) once = once && h.load() == 1;
        KCHECK(once) << ctx << ": some index not visited exactly once";
        // Enough work for several chunks is actually split.
        if (threads > 1 && n >= 2 * std::max<int64_t>(grain, 1)) {
          KCHECK(chunks.size() > 1) << ctx << ": ran as one chunk";
        }
      }
    }
  }
  // Negative n does nothing.
  KCHECK(record(-5, 1).empty());
  kiln::cpu::set_num_threads(saved);
}

KTEST(threadpool, chunking_is_deterministic) {
  // The same (n, grain, threads) always gives the same chunks, whatever the timing.
  kiln::cpu::set_num_threads(3);
  const auto first = record(100000, 1000);
  bool same = true;
  for (int rep = 0; rep < 200; ++rep) {
    const auto again = record(100000, 1000);
    same = same && again.size() == first.size();
    for (size_t i = 0; same && i < again.size(); ++i) {
      same = again[i].begin == first[i].begin && again[i].end == first[i].end;
    }
  }
  KCHECK(same);
  kiln::cpu::set_num_threads(0);
}

KTEST(threadpool, nested_calls_run_inline_and_cover) {
  for (int threads : {2, 4}) {
    kiln::cpu::set_num_threads(threads);
    const int64_t n = 64, inner_n = 1000;
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n * inner_n));
    std::atomic<int> bad_inner{0}, inner_calls{0};
    parallel_for(n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const std::thread::id outer = std::this_thread::get_id();
        std::vector<std::pair<int64_t, int64_t>> seen;
        parallel_for(inner_n, 1, [&](int64_t ib, int64_t ie) {
          if (std::this_thread::get_id() != outer) ++bad_inner;
          seen.emplace_back(ib, ie);  // inline: only this thread touches `seen`
          for (int64_t j = ib; j < ie; ++j) hits[static_cast<size_t>(i * inner_n + j)].fetch_add(1);
        });
        ++inner_calls;
        if (seen.size() != 1 || seen[0].first != 0 || seen[0].second != inner_n) ++bad_inner;
      }
    });
    KCHECK_EQ(bad_inner.load(), 0) << "threads " << threads << ": a nested call was split or left its thread";
    KCHECK_EQ(inner_calls.load(), n);
    bool once = true;
    for (auto& h : hits) once = once && h.load() == 1;
    KCHECK(once) << "threads " << threads;
  }
  kiln::cpu::set_num_threads(0);
}

KTEST(threadpool, set_num_threads_zero_restores_default) {
  const char* env = std::getenv("KILN_NUM_THREADS");
  const std::string saved_env = env ? env : "";
  unsetenv("KILN_NUM_THREADS");
  cpu_set_t set;
  int expected = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) >= 1) expected = CPU_COUNT(&set);
  KCHECK_EQ(kiln::cpu::default_num_threads(), expected);
  kiln::cpu::set_num_threads(5);
  KCHECK_EQ(kiln::cpu::num_threads(), 5);
  kiln::cpu::set_num_threads(0);
  KCHECK_EQ(kiln::cpu::num_threads(), expected);
  kiln::cpu::set_num_threads(3);
  kiln::cpu::set_num_threads(-2);  // n <= 0: the default
  KCHECK_EQ(kiln::cpu::num_threads(), expected);
  // KILN_NUM_THREADS sets the default; junk is ignored.
  setenv("KILN_NUM_THREADS", "3", 1);
  KCHECK_EQ(kiln::cpu::default_num_threads(), 3);
  kiln::cpu::set_num_threads(0);
  KCHECK_EQ(kiln::cpu::num_threads(), 3);
  setenv("KILN_NUM_THREADS", "zero", 1);
  KCHECK_EQ(kiln::cpu::default_num_threads(), expected);
  if (env) {
    setenv("KILN_NUM_THREADS", saved_env.c_str(), 1);
  } else {
    unsetenv("KILN_NUM_THREADS");
  }
  kiln::cpu::set_num_threads(0);
  // Still works after all the resizing.
  Hits hits(10000);
  check_cover(record(10000, 10, &hits), 10000, 10, kiln::cpu::num_threads(), "after resizing");
}

// Waits for `done` up to `seconds`; on a hang, reports and exits (the
// deadlocked threads cannot be joined).
void expect_finishes(std::atomic<int>& done, int want, int seconds, const char* what) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (done.load() < want && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (done.load() < want) {
    std::cerr << "    FAIL " << __FILE__ << ": " << what << " did not finish in " << seconds << " s (deadlock?)"
              << std::endl;
    std::cout << "[ FAIL ] threadpool: deadlock" << std::endl;
    std::_Exit(1);
  }
}

KTEST(threadpool, concurrent_callers_do_not_deadlock) {
  kiln::cpu::set_num_threads(3);
  // 1) Deterministic overlap: A holds the pool (its own chunk waits) while B
  //    calls parallel_for; B must run inline on its own thread and finish.
  {
    std::mutex mu;
    std::condition_variable cv;
    bool b_done = false, a_inside = false;
    std::vector<Chunk> b_chunks;
    std::atomic<int> finished{0};
    Hits a_hits(3000);
    std::thread a([&] {
      std::mutex cmu;
      std::vector<Chunk> chunks;
      parallel_for(3000, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) a_hits[static_cast<size_t>(i)].fetch_add(1);
        if (b == 0) {  // the caller's own chunk: hold the pool until B is done
          std::unique_lock<std::mutex> lk(mu);
          a_inside = true;
          cv.notify_all();
          cv.wait_for(lk, std::chrono::seconds(20), [&] { return b_done; });
        }
      });
      ++finished;
    });
    std::thread b([&] {
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait_for(lk, std::chrono::seconds(20), [&] { return a_inside; });
      }
      b_chunks = record(5000, 1);
      {
        std::lock_guard<std::mutex> lk(mu);
        b_done = true;
      }
      cv.notify_all();
      ++finished;
    });
    const std::thread::id b_id = b.get_id();
    expect_finishes(finished, 2, 30, "overlapping parallel_for calls");
    a.join();
    b.join();
    KCHECK_EQ(b_chunks.size(), size_t(1)) << "the second caller did not run inline";
    if (b_chunks.size() == 1) {
      KCHECK(b_chunks[0].begin == 0 && b_chunks[0].end == 5000);
      KCHECK(b_chunks[0].tid == b_id) << "the inline call left its thread";
    }
    bool once = true;
    for (auto& h : a_hits) once = once && h.load() == 1;
    KCHECK(once) << "the pool's own job lost indices";
  }
  // 2) Free-running: two threads hammering the pool.
  {
    std::atomic<int> finished{0}, bad{0};
    auto hammer = [&](int seed) {
      for (int rep = 0; rep < 300; ++rep) {
        const int64_t n = 1 + (rep * 7919 + seed * 104729) % 20000;
        Hits hits(static_cast<size_t>(n));
        const auto chunks = record(n, 64, &hits);
        int64_t covered = 0;
        for (const Chunk& c : chunks) covered += c.end - c.begin;
        bool once = covered == n;
        for (auto& h : hits) once = once && h.load() == 1;
        if (!once) ++bad;
      }
      ++finished;
    };
    std::thread t1(hammer, 1), t2(hammer, 2);
    expect_finishes(finished, 2, 60, "two threads calling parallel_for");
    t1.join();
    t2.join();
    KCHECK_EQ(bad.load(), 0);
  }
  kiln::cpu::set_num_threads(0);
}

KTEST(threadpool, resize_while_another_thread_runs) {
  // set_num_threads on one thread while another keeps calling parallel_for:
  // every call still covers its range and nothing hangs.
  kiln::cpu::set_num_threads(4);
  std::atomic<int> finished{0}, bad{0};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> calls{0}, resizes{0};
  std::thread user([&] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    while (std::chrono::steady_clock::now() < until) {
      ++calls;
      std::atomic<int64_t> sum{0};
      parallel_for(1000, 1, [&](int64_t b, int64_t e) {
        int64_t local = 0;
        for (int64_t i = b; i < e; ++i) local += i;
        sum += local;
      });
      if (sum.load() != 999 * 1000 / 2) ++bad;
    }
    stop = true;
    ++finished;
  });
  std::thread resizer([&] {
    for (int k = 0; !stop.load(); ++k) {
      kiln::cpu::set_num_threads(k % 2 ? 1 : 4);
      ++resizes;
    }
    ++finished;
  });
  expect_finishes(finished, 2, 15, "parallel_for while another thread resizes the pool");
  user.join();
  resizer.join();
  KCHECK_EQ(bad.load(), 0);
  std::cout << "    " << calls.load() << " calls during " << resizes.load() << " resizes" << std::endl;
  kiln::cpu::set_num_threads(0);
}

}  // namespace
