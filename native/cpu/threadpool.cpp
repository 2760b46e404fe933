#include "kiln/threadpool.h"

#include <sched.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {
namespace cpu {
namespace {

thread_local bool t_in_parallel = false;

// Workers 1..n-1 wait for a job; the calling thread runs chunk 0 itself.
class Pool {
 public:
  explicit Pool(int threads) { start(threads); }
  ~Pool() { stop(); }

  int threads() const { return threads_; }

  void resize(int threads) {
    std::lock_guard<std::mutex> use(use_mu_);
    stop();
    start(threads);
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    const int64_t by_grain = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
    // Serial when there is one chunk, when nested, or when another thread holds the pool.
    std::unique_lock<std::mutex> use(use_mu_, std::try_to_lock);
    // threads_ is read only under use_mu_: resize() (which holds it) may be changing the pool.
    const int chunks = use.owns_lock() ? static_cast<int>(std::min<int64_t>(threads_, by_grain)) : 1;
    if (chunks <= 1 || t_in_parallel || !use.owns_lock()) {
      fn(0, n);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      job_n_ = n;
      job_chunks_ = chunks;
      pending_ = chunks - 1;
      ++generation_;
    }
    cv_start_.notify_all();
    t_in_parallel = true;
    fn(0, n / chunks);
    t_in_parallel = false;
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void start(int threads) {
    threads_ = std::max(1, threads);
    stopping_ = false;
    // New workers wait for the *next* job: jobs before they existed are done.
    const uint64_t current = generation_;
    for (int id = 1; id < threads_; ++id) workers_.emplace_back([this, id, current] { worker(id, current); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_ = true;
    }
    cv_start_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void worker(int id, uint64_t seen) {
    t_in_parallel = true;
    for (;;) {
      const std::function<void(int64_t, int64_t)>* job;
      int64_t n;
      int chunks;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_start_.wait(lk, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        job = job_;
        n = job_n_;
        chunks = job_chunks_;
      }
      if (id < chunks) {
        (*job)(n * id / chunks, n * (id + 1) / chunks);
        std::lock_guard<std::mutex> lk(mu_);
        if (--pending_ == 0) cv_done_.notify_one();
      }
    }
  }

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex use_mu_;  // one parallel_for at a time
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  uint64_t generation_ = 0;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
};

Pool& pool() {
  static Pool* p = new Pool(default_num_threads());  // never destroyed: workers may outlive static teardown
  return *p;
}

}  // namespace

int default_num_threads() {
  if (const char* env = std::getenv("KILN_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

int num_threads() { return pool().threads(); }

void set_num_threads(int n) { pool().resize(n <= 0 ? default_num_threads() : n); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  pool().run(n, grain, fn);
}

}  // namespace cpu
}  // namespace kiln
