// CUDA kernels embedding and embedding_backward (native/KERNELS.md
// "Embedding"); validation: the CPU's prepare_embedding
// (native/core/embedding.cpp). Every id is checked on the device before
// anything is written (cuda/index_check.cuh: one synchronization; an id outside
// [0, V) gives the CPU's ValueError text for the first bad position).
//
// embedding: one thread per output element copies the weight element's bits
// (any strides): the CPU's bits.
//
// embedding_backward, deterministic without atomics, in the CPU's order:
//   1. the ids (as uint32) and their positions 0..N-1 are sorted by id with
//      CUB's radix sort, which is stable: within one id the positions stay in
//      increasing order (the CPU's counting sort gives the same grouping);
//   2. each id's run [start, end) in the sorted order is found from the
//      boundaries between runs (ids with no position keep [0, 0));
//   3. one thread per gweight element (v, d) adds gout[n, d] over the positions
//      n of id v in increasing n, in float32 from +0 (__fadd_rn), and rounds
//      once to the dtype; rows of ids that never occur get 0.
// That is the CPU's float32 sum in the CPU's order, so gweight is the CPU's
// bits (a NaN made by adding infinities of both signs carries the GPU's NaN
// bits). A very frequent id makes its D threads long (the sum is sequential
// per element by contract, as on the CPU).
#include <cub/device/device_radix_sort.cuh>

#include <string>
#include <type_traits>

#include "common.cuh"
#include "index_check.cuh"
#include "kiln/element.h"
#include "kiln/embedding.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

// out[n, d] = w[ids[n], d], raw elements.
template <class T>
__global__ void __launch_bounds__(kBlock) embedding_rows(const T* __restrict__ w, int64_t ws0, int64_t ws1,
                                                         const int32_t* __restrict__ ids, int64_t is,
                                                         T* __restrict__ out, int64_t os0, int64_t os1, int64_t N,
                                                         int64_t D) {
  KILN_GRID_STRIDE_LOOP(i, N * D) {
    const int64_t n = i / D, d = i - n * D;
    const int64_t id = ids[n * is];
    out[n * os0 + d * os1] = w[id * ws0 + d * ws1];
  }
}

// keys[n] = ids[n] (validated: in [0, V)), pos[n] = n.
template <class I>
__global__ void __launch_bounds__(kBlock) gather_ids(const int32_t* __restrict__ ids, int64_t is, int64_t N,
                                                     uint32_t* __restrict__ keys, I* __restrict__ pos) {
  KILN_GRID_STRIDE_LOOP(n, N) {
    keys[n] = static_cast<uint32_t>(ids[n * is]);
    pos[n] = static_cast<I>(n);
  }
}

// The run of each id in the sorted keys: [start[v], end[v]) (both zeroed before).
template <class I>
__global__ void __launch_bounds__(kBlock) id_runs(const uint32_t* __restrict__ keys, int64_t N, I* __restrict__ start,
                                                  I* __restrict__ end) {
  KILN_GRID_STRIDE_LOOP(i, N) {
    const uint32_t k = keys[i];
    if (i == 0 || keys[i - 1] != k) start[k] = static_cast<I>(i);
    if (i == N - 1 || keys[i + 1] != k) end[k] = static_cast<I>(i + 1);
  }
}

// gw[v, d] = sum over the sorted positions n of id v, in order, of gout[n, d].
template <class E, class I>
__global__ void __launch_bounds__(kBlock) accumulate_rows(const typename E::T* __restrict__ gout, int64_t g0, int64_t g1,
                                                          const I* __restrict__ pos, const I* __restrict__ start,
                                                          const I* __restrict__ end, typename E::T* __restrict__ gw,
                                                          int64_t w0, int64_t w1, int64_t V, int64_t D) {
  KILN_GRID_STRIDE_LOOP(i, V * D) {
    const int64_t v = i / D, d = i - v * D;
    const int64_t k1 = static_cast<int64_t>(end[v]);
    float acc = 0.0f;
#pragma unroll 4
    for (int64_t k = static_cast<int64_t>(start[v]); k < k1; ++k) {
      const int64_t n = static_cast<int64_t>(pos[k]);
      acc = __fadd_rn(acc, E::to_f32(gout[n * g0 + d * g1]));
    }
    gw[v * w0 + d * w1] = E::from_f32(acc);
  }
}

template <class E, class I>
Status backward(const KernelArgs& args, const EmbeddingPlan& plan, int device, cudaStream_t s) {
  using T = typename E::T;
  const View &ids = args.in[0], &gout = args.in[1], &gw = args.out[0];
  const int64_t N = plan.n, V = plan.vocab, D = plan.dim;
  DeviceScratch runs;
  KILN_RETURN_IF_ERROR(runs.alloc(device, static_cast<size_t>(2 * V) * sizeof(I)));
  I* start = runs.as<I>();
  I* end = start + V;
  KILN_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(start, 0, static_cast<size_t>(2 * V) * sizeof(I), s), args.op);
  DeviceScratch keys_in, keys_out, pos_in, pos_out, temp;
  if (N > 0) {
    KILN_RETURN_IF_ERROR(keys_in.alloc(device, static_cast<size_t>(N) * sizeof(uint32_t)));
    KILN_RETURN_IF_ERROR(keys_out.alloc(device, static_cast<size_t>(N) * sizeof(uint32_t)));
    KILN_RETURN_IF_ERROR(pos_in.alloc(device, static_cast<size_t>(N) * sizeof(I)));
    KILN_RETURN_IF_ERROR(pos_out.alloc(device, static_cast<size_t>(N) * sizeof(I)));
    gather_ids<I><<<grid_for(N), kBlock, 0, s>>>(reinterpret_cast<const int32_t*>(ids.data()), ids.strides[0], N,
                                                 keys_in.as<uint32_t>(), pos_in.as<I>());
    KILN_CUDA_LAUNCH_CHECK(args.op);
    // Only the bits that can be set in an id below V take part in the sort.
    int end_bit = 1;
    while (end_bit < 32 && (int64_t(1) << end_bit) < V) ++end_bit;
    using NumItems = typename std::conditional<std::is_same<I, int32_t>::value, int, int64_t>::type;
    size_t temp_bytes = 0;
    KILN_CUDA_RETURN_IF_ERROR(
        cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in.as<uint32_t>(), keys_out.as<uint32_t>(),
                                        pos_in.as<I>(), pos_out.as<I>(), static_cast<NumItems>(N), 0, end_bit, s),
        args.op);
    KILN_RETURN_IF_ERROR(temp.alloc(device, temp_bytes > 0 ? temp_bytes : 1));
    KILN_CUDA_RETURN_IF_ERROR(
        cub::DeviceRadixSort::SortPairs(temp.as<void>(), temp_bytes, keys_in.as<uint32_t>(), keys_out.as<uint32_t>(),
                                        pos_in.as<I>(), pos_out.as<I>(), static_cast<NumItems>(N), 0, end_bit, s),
        args.op);
    id_runs<I><<<grid_for(N), kBlock, 0, s>>>(keys_out.as<uint32_t>(), N, start, end);
    KILN_CUDA_LAUNCH_CHECK(args.op);
  }
  accumulate_rows<E, I><<<grid_for(V * D), kBlock, 0, s>>>(reinterpret_cast<const T*>(gout.data()), gout.strides[0],
                                                           gout.strides[1], pos_out.as<I>(), start, end,
                                                           reinterpret_cast<T*>(gw.data()), gw.strides[0],
                                                           gw.strides[1], V, D);
  KILN_CUDA_LAUNCH_CHECK(args.op);
  return Status::Ok();
}

template <class E>
Status embedding_dtype(const KernelArgs& args, const EmbeddingPlan& plan, int device, cudaStream_t s) {
  using T = typename E::T;
  if (!plan.backward) {
    const View &w = args.in[0], &ids = args.in[1], &out = args.out[0];
    if (plan.n == 0 || plan.dim == 0) return Status::Ok();
    // Raw copies: the element's bits, whatever the float dtype.
    using Raw = typename std::conditional<sizeof(T) == 4, uint32_t, uint16_t>::type;
    embedding_rows<Raw><<<grid_for(plan.n * plan.dim), kBlock, 0, s>>>(
        reinterpret_cast<const Raw*>(w.data()), w.strides[0], w.strides[1],
        reinterpret_cast<const int32_t*>(ids.data()), ids.strides[0], reinterpret_cast<Raw*>(out.data()),
        out.strides[0], out.strides[1], plan.n, plan.dim);
    KILN_CUDA_LAUNCH_CHECK(args.op);
    return Status::Ok();
  }
  if (plan.vocab == 0 || plan.dim == 0) return Status::Ok();
  if (plan.n <= INT32_MAX) return backward<E, int32_t>(args, plan, device, s);
  return backward<E, int64_t>(args, plan, device, s);
}

Status embedding_kernel(const KernelArgs& args) {
  EmbeddingPlan plan;
  KILN_RETURN_IF_ERROR(prepare_embedding(args, &plan));
  const View& ids = plan.backward ? args.in[0] : args.in[1];
  const View& table = plan.backward ? args.out[0] : args.in[0];
  const int device = table.device.index;
  KILN_CUDA_ENTER(guard, device, args.op, s);
  IndexCheckResult chk;
  KILN_RETURN_IF_ERROR(check_indices(ids, plan.vocab, false, 0, device, s, args.op, &chk));
  if (chk.first_bad >= 0) return embedding_id_error(args.op, chk.first_bad, chk.bad_value, plan.vocab);
  switch (table.dtype) {
    case DType::Float32: return embedding_dtype<el::F32>(args, plan, device, s);
    case DType::Float16: return embedding_dtype<el::F16>(args, plan, device, s);
    case DType::BFloat16: return embedding_dtype<el::BF16>(args, plan, device, s);
    default: break;
  }
  return no_kernel(args.op, table.dtype, DeviceKind::CUDA);
}

const bool kRegistered = register_embedding_kernels(DeviceKind::CUDA, embedding_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
