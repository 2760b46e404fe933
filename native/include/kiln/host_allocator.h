// Host memory for tensors: 64-byte aligned; blocks of 4 MiB and more are
// 2 MiB aligned, marked for transparent huge pages, and kept in a cache when
// freed so that the next tensor of the same size reuses memory that is already
// mapped (a training step allocates the same shapes every step; fresh pages
// would cost a page fault and a zeroing each).
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {
namespace cpu {

void* host_malloc(size_t bytes);  // nullptr when out of memory (after emptying the cache)
void host_free(void* ptr, size_t bytes);
void host_empty_cache();

struct HostAllocatorStats {
  size_t cached_bytes = 0;   // held in the cache, not in use
  uint64_t large_allocations = 0;
  uint64_t cache_hits = 0;
};
HostAllocatorStats host_allocator_stats();

}  // namespace cpu
}  // namespace kiln
