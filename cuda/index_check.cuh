// Validation of int32 index operands on the device (embedding ids,
// cross-entropy targets), for cuda/embedding.cu and cuda/softmax.cu.
//
// A kernel cannot return a Status, so the check is a kernel of its own that
// runs before anything is written: it records the FIRST offending position
// (atomicMin over positions: the same position the CPU's sequential scan
// reports, whatever the thread order) and the number of entries that are
// neither offending nor ignored (integer atomics: exact). The host reads the
// 16-byte result back (one stream synchronization) and, when a position is
// bad, that position's value; the caller turns them into the op's ValueError
// (embedding_id_error / cross_entropy_target_error), the same text as the CPU.
#pragma once
#include <cstdint>

#include "common.cuh"

namespace kiln {
namespace cuda {
namespace {  // a copy per translation unit (the kernel is defined here)

struct IndexCheck {
  unsigned long long first_bad;  // ~0: none
  unsigned long long count;      // entries in [0, limit) that are not `ignore`
};

// v[i * stride] for i < n must lie in [0, limit) or (when has_ignore) equal ignore.
__global__ void __launch_bounds__(kBlock) check_index_values(const int32_t* v, int64_t stride, int64_t n, int64_t limit,
                                                             int64_t ignore, int has_ignore, IndexCheck* out) {
  unsigned long long count = 0, bad = ~0ull;
  KILN_GRID_STRIDE_LOOP(i, n) {
    const int64_t x = v[i * stride];
    if (has_ignore && x == ignore) continue;
    if (x < 0 || x >= limit) {
      const unsigned long long p = static_cast<unsigned long long>(i);
      bad = p < bad ? p : bad;
    } else {
      ++count;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    count += __shfl_down_sync(0xFFFFFFFFu, count, o);
    const unsigned long long b = __shfl_down_sync(0xFFFFFFFFu, bad, o);
    bad = b < bad ? b : bad;
  }
  if ((threadIdx.x & 31) == 0) {
    if (count != 0) atomicAdd(&out->count, count);
    if (bad != ~0ull) atomicMin(&out->first_bad, bad);
  }
}

struct IndexCheckResult {
  int64_t first_bad = -1;  // -1: every entry is fine
  int64_t bad_value = 0;   // the value at first_bad
  int64_t count = 0;       // entries in range and not ignored
};

// Runs the check for the 1-D int32 view `ids` on `device` / stream `s` and waits
// for it. n == 0 needs no GPU work.
Status check_indices(const View& ids, int64_t limit, bool has_ignore, int64_t ignore, int device, cudaStream_t s,
                            const char* op, IndexCheckResult* r) {
  *r = IndexCheckResult();
  const int64_t n = ids.shape[0];
  if (n == 0) return Status::Ok();
  DeviceScratch scratch;
  KILN_RETURN_IF_ERROR(scratch.alloc(device, sizeof(IndexCheck)));
  IndexCheck* d = scratch.as<IndexCheck>();
  KILN_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(&d->first_bad, 0xFF, sizeof(d->first_bad), s), op);
  KILN_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(&d->count, 0, sizeof(d->count), s), op);
  const int32_t* v = reinterpret_cast<const int32_t*>(ids.data());
  const int64_t stride = ids.strides[0];
  check_index_values<<<grid_for(n), kBlock, 0, s>>>(v, stride, n, limit, ignore, has_ignore ? 1 : 0, d);
  KILN_CUDA_LAUNCH_CHECK(op);
  IndexCheck h;
  KILN_RETURN_IF_ERROR(read_back(&h, d, sizeof(h), s, op));
  r->count = static_cast<int64_t>(h.count);
  if (h.first_bad != ~0ull) {
    r->first_bad = static_cast<int64_t>(h.first_bad);
    int32_t value = 0;
    KILN_RETURN_IF_ERROR(read_back(&value, v + r->first_bad * stride, sizeof(value), s, op));
    r->bad_value = value;
  }
  return Status::Ok();
}

}  // namespace
}  // namespace cuda
}  // namespace kiln
