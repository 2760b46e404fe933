#include "kiln/host_allocator.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

namespace kiln {
namespace cpu {
namespace {

constexpr size_t kSmallAlignment = 64;
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kLargeThreshold = size_t(4) << 20;

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// The cache holds at most min(2 GiB, RAM / 8).
size_t cache_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const size_t ram = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : size_t(8) << 30;
  return std::min(size_t(2) << 30, ram / 8);
}

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> blocks;  // rounded size -> block
  HostAllocatorStats stats;
  const size_t limit = cache_limit();
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: frees may come during static teardown
  return *c;
}

void* fresh_large(size_t rounded) {
  void* p = std::aligned_alloc(kHugePage, rounded);
#ifdef MADV_HUGEPAGE
  if (p != nullptr) (void)madvise(p, rounded, MADV_HUGEPAGE);  // advice only
#endif
  return p;
}

}  // namespace

void* host_malloc(size_t bytes) {
  if (bytes < kLargeThreshold) {
    const size_t rounded = round_up(bytes, kSmallAlignment);
    return rounded < bytes ? nullptr : std::aligned_alloc(kSmallAlignment, rounded);
  }
  const size_t rounded = round_up(bytes, kHugePage);
  if (rounded < bytes) return nullptr;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lk(c.mu);
    ++c.stats.large_allocations;
    const auto it = c.blocks.find(rounded);
    if (it != c.blocks.end()) {
      void* p = it->second;
      c.blocks.erase(it);
      c.stats.cached_bytes -= rounded;
      ++c.stats.cache_hits;
      return p;
    }
  }
  void* p = fresh_large(rounded);
  if (p == nullptr) {
    host_empty_cache();
    p = fresh_large(rounded);
  }
  return p;
}

void host_free(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  if (bytes < kLargeThreshold) {
    std::free(ptr);
    return;
  }
  const size_t rounded = round_up(bytes, kHugePage);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lk(c.mu);
    if (c.stats.cached_bytes + rounded <= c.limit) {
      c.blocks.emplace(rounded, ptr);
      c.stats.cached_bytes += rounded;
      return;
    }
  }
  std::free(ptr);
}

void host_empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  for (auto& kv : c.blocks) std::free(kv.second);
  c.blocks.clear();
  c.stats.cached_bytes = 0;
}

HostAllocatorStats host_allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  return c.stats;
}

}  // namespace cpu
}  // namespace kiln
