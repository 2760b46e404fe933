// Suite 'storage': host storage allocation (alignment, the large-block cache)
// and host copies.
#include <cstdint>
#include <cstring>
#include <vector>

#include "harness.h"
#include "kiln/host_allocator.h"
#include "kiln/storage.h"

namespace {

using namespace kiln;

KTEST(storage, alignment_and_zero_bytes) {
  void* p = nullptr;
  KCHECK(storage_alloc(Device(), 0, &p).ok());
  KCHECK(p == nullptr);
  storage_free(Device(), p, 0);
  for (size_t bytes : {size_t(1), size_t(63), size_t(64), size_t(1000), size_t(4) << 20, (size_t(5) << 20) + 3}) {
    KCHECK(storage_alloc(Device(), bytes, &p).ok()) << bytes;
    const size_t align = bytes >= (size_t(4) << 20) ? (size_t(2) << 20) : 64;
    KCHECK_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << bytes;
    std::memset(p, 0xAB, bytes);  // the whole range is writable
    storage_free(Device(), p, bytes);
  }
}

KTEST(storage, large_blocks_are_reused) {
  cpu::host_empty_cache();
  const size_t bytes = (size_t(6) << 20) + 12345;
  const cpu::HostAllocatorStats s0 = cpu::host_allocator_stats();
  KCHECK_EQ(s0.cached_bytes, 0u);
  void* a = cpu::host_malloc(bytes);
  KCHECK(a != nullptr);
  cpu::host_free(a, bytes);
  const cpu::HostAllocatorStats s1 = cpu::host_allocator_stats();
  KCHECK_EQ(s1.cached_bytes, size_t(8) << 20);  // rounded up to 2 MiB
  void* b = cpu::host_malloc(bytes - 100);  // same rounded size
  KCHECK(b == a);
  const cpu::HostAllocatorStats s2 = cpu::host_allocator_stats();
  KCHECK_EQ(s2.cache_hits, s1.cache_hits + 1);
  KCHECK_EQ(s2.cached_bytes, 0u);
  void* c = cpu::host_malloc(size_t(20) << 20);  // another size: not served from the cache
  KCHECK(c != nullptr && c != b);
  cpu::host_free(b, bytes);
  cpu::host_free(c, size_t(20) << 20);
  KCHECK_EQ(cpu::host_allocator_stats().cached_bytes, size_t(28) << 20);
  cpu::host_empty_cache();
  KCHECK_EQ(cpu::host_allocator_stats().cached_bytes, 0u);
}

KTEST(storage, host_copy) {
  std::vector<uint8_t> src(1 << 20), dst(1 << 20, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7 + 3);
  KCHECK(storage_copy(Device(), dst.data(), Device(), src.data(), src.size()).ok());
  KCHECK(dst == src);
  KCHECK(storage_copy(Device(), dst.data(), Device(), src.data(), 0).ok());
}

}  // namespace
