// CUDA kernels sum, mean, max, min, argmax (native/KERNELS.md "Reductions"),
// registered for the CPU's (op, dtype) set. Validation and the index plan:
// prepare_reduce (native/core/reduce.cpp), as on the CPU.
//
// Accumulators (the CPU's, native/cpu/reduce_keys.h):
//   float sum / mean: float64 (fast on H100), rounded once at the end; a NaN
//     result is the canonical quiet NaN; int32 sum: uint32, wrapping;
//   max / min: order-preserving int32 keys of the float values (-0 < +0; a NaN
//     above +inf for max, below -inf for min), or the int32 values;
//   argmax: one uint64 = (biased key << 32) | (2^32 - 1 - index), every NaN the
//     one largest key and +-0 one key, so the integer max is the largest key,
//     then the first index.
// max / min / argmax combine with an integer max / min, which is associative and
// commutative: the results are the CPU's bits whatever the order. Sums depend on
// the order; it is fixed by the plan alone (shape, strides, axes), never by the
// GPU or the launch size, so two runs give the same bits. It is not the CPU's
// order, so sums and means match the CPU to float64 rounding, then one rounding
// to the dtype (|cuda - cpu| <= ~n_red 2^-52 sum|x| + 1 ulp of the dtype).
//
// Schemes (the plan has kept dims k and reduced dims r; k * S work items):
//   rows (the reduced elements of an output are the faster-moving index, e.g.
//     sum over the last axis): a group of G threads per (output, segment) --
//     G = 1, 32 (a warp) or 256 (a block) by the segment length -- each thread
//     takes the elements lane, lane + G, ... of its segment in order, then a
//     fixed shuffle / shared-memory tree combines the group;
//   columns (the innermost kept dim moves faster than the innermost reduced
//     one, e.g. sum over a leading axis): one thread per output, consecutive
//     threads on consecutive outputs (coalesced), each walking its segment of
//     the reduced rows in order.
//   Long reductions are cut into S fixed-length segments (S from the shape):
//   a first kernel writes one partial per (output, segment), a second folds the
//   S partials of each output in a fixed order (thread-sequential, or a block
//   tree when S >= 64). Full reductions (one output) are the rows scheme with
//   S ~ n_red / 16384 blocks of 256 threads, then one block folding the partials.
#include <string>
#include <type_traits>

#include "common.cuh"
#include "float_keys.cuh"
#include "kiln/element.h"
#include "kiln/reduce.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

enum Kind : int { kSum = 0, kMax, kMin, kArg };

// ---- accumulator policies --------------------------------------------------------------------

template <int KIND, class E>
struct Red {
  static constexpr bool kInt = std::is_same<E, el::I32>::value;
  using T = typename E::T;
  using A = typename std::conditional<
      KIND == kSum, typename std::conditional<kInt, uint32_t, double>::type,
      typename std::conditional<KIND == kArg, unsigned long long, int32_t>::type>::type;
  using Out = typename std::conditional<KIND == kArg, int32_t, T>::type;

  __device__ static A identity() {
    if constexpr (KIND == kSum) {
      if constexpr (kInt) {
        return 0u;
      } else {
        return -0.0;  // the exact identity of IEEE addition (the CPU's)
      }
    } else if constexpr (KIND == kMax) {
      return INT32_MIN;
    } else if constexpr (KIND == kMin) {
      return INT32_MAX;
    } else {
      return 0ull;  // below every packed element
    }
  }
  // b follows a (only sums care).
  __device__ static A combine(A a, A b) {
    if constexpr (KIND == kSum) {
      return a + b;
    } else if constexpr (KIND == kMin) {
      return b < a ? b : a;
    } else {
      return b > a ? b : a;
    }
  }
  // Element v at reduced index r.
  __device__ static A element(T v, int64_t r) {
    if constexpr (KIND == kSum) {
      if constexpr (kInt) {
        return static_cast<uint32_t>(v);
      } else {
        return static_cast<double>(E::to_f32(v));
      }
    } else if constexpr (KIND == kMax || KIND == kMin) {
      if constexpr (kInt) {
        return v;
      } else {
        return float_key(E::to_f32(v), KIND == kMax);
      }
    } else {
      int64_t key;
      if constexpr (kInt) {
        key = v;
      } else {
        key = arg_key(E::to_f32(v));
      }
      const unsigned long long hi = static_cast<uint32_t>(key + 2147483648LL);
      const unsigned long long lo = 0xFFFFFFFFull - static_cast<unsigned long long>(r);
      return (hi << 32) | lo;
    }
  }
  __device__ static void write(Out* y, A total, int64_t n_red, bool mean) {
    if constexpr (KIND == kSum) {
      if constexpr (kInt) {
        *y = static_cast<int32_t>(total);
      } else {
        double v = n_red == 0 ? 0.0 : total;  // the sum of nothing is +0
        if (mean) v = v / static_cast<double>(n_red);  // 0 / 0 = NaN
        if (v != v) v = num::bits_f64(0x7FF8000000000000ull);  // the canonical quiet NaN, as the CPU
        *y = E::from_f64(v);
      }
    } else if constexpr (KIND == kArg) {
      *y = static_cast<int32_t>(0xFFFFFFFFull - (total & 0xFFFFFFFFull));
    } else if constexpr (kInt) {
      *y = total;
    } else {
      *y = E::from_f32(key_float(total));
    }
  }
};

template <class A>
__device__ __forceinline__ A shfl_down(A v, int o) {
  return __shfl_down_sync(0xFFFFFFFFu, v, o);
}

// Combines the values of a group of G consecutive threads (G = 1, 32 or
// kBlock) in a fixed tree; the result is valid in the group's first thread.
// For G = kBlock every thread of the block must call it (it synchronizes).
template <int G, class R>
__device__ __forceinline__ typename R::A group_combine(typename R::A v, typename R::A* smem) {
  using A = typename R::A;
  if constexpr (G == 1) {
    return v;
  } else {
    for (int o = 16; o > 0; o >>= 1) v = R::combine(v, shfl_down(v, o));
    if constexpr (G == 32) {
      return v;
    } else {
      static_assert(G == kBlock, "group size");
      const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
      if (lane == 0) smem[warp] = v;
      __syncthreads();
      if (warp == 0) {
        v = lane < kBlock / 32 ? smem[lane] : R::identity();
        for (int o = (kBlock / 32) / 2; o > 0; o >>= 1) v = R::combine(v, shfl_down(v, o));
      }
      __syncthreads();  // smem is free again
      return v;
    }
  }
}

// Element offset of row-major index k over n dims (shape, strides).
__device__ __forceinline__ int64_t offset_of(int64_t k, int n, const int64_t* shape, const int64_t* strides) {
  int64_t off = 0;
  for (int d = n - 1; d >= 0; --d) {
    const int64_t q = k / shape[d];
    off += (k - q * shape[d]) * strides[d];
    k = q;
  }
  return off;
}

// Where a sum goes: straight to the output (S == 1), or to a partial.
struct Dest {
  int64_t S;           // segments per output
  int64_t seg;         // reduced elements per segment (the last may be shorter)
  int64_t pk, ps;      // partial index = k * pk + s * ps
  bool mean;
};

// ---- rows: a group of G threads per (output, segment) -------------------------------------------

template <class R, int G>
__global__ void __launch_bounds__(kBlock) reduce_rows(const typename R::T* __restrict__ x, typename R::Out* __restrict__ y,
                                                      typename R::A* __restrict__ partial, ReducePlan p, Dest d) {
  using A = typename R::A;
  __shared__ A smem[kBlock / 32];
  constexpr int kGroups = kBlock / G;
  const int lane = static_cast<int>(threadIdx.x) % G;
  const int64_t n_items = p.n_out * d.S;
  const int64_t L = p.nr > 0 ? p.rshape[p.nr - 1] : 1;
  const int64_t rs = p.nr > 0 ? p.rin[p.nr - 1] : 0;
  const int nro = p.nr > 0 ? p.nr - 1 : 0;
  // The loop bound is uniform over a group (the whole block when G == kBlock).
  for (int64_t item = static_cast<int64_t>(blockIdx.x) * kGroups + threadIdx.x / G; item < n_items;
       item += static_cast<int64_t>(gridDim.x) * kGroups) {
    const int64_t k = item / d.S, s = item - k * d.S;
    const int64_t begin = s * d.seg;
    const int64_t end = begin + d.seg < p.n_red ? begin + d.seg : p.n_red;
    const typename R::T* xk = x + offset_of(k, p.nk, p.kshape, p.kin);
    A acc = R::identity();
    int64_t r = begin + lane;
    if (nro == 0) {
#pragma unroll 4
      for (; r < end; r += G) acc = R::combine(acc, R::element(xk[r * rs], r));
    } else if (r < end) {  // (L > 0 here)
      int64_t m = r / L, i = r - m * L;
      int64_t base = offset_of(m, nro, p.rshape, p.rin);
      for (; r < end; r += G) {
        acc = R::combine(acc, R::element(xk[base + i * rs], r));
        i += G;
        if (i >= L) {
          m += i / L;
          i %= L;
          base = offset_of(m, nro, p.rshape, p.rin);
        }
      }
    }
    acc = group_combine<G, R>(acc, smem);
    if (lane == 0) {
      if (d.S == 1) {
        R::write(y + offset_of(k, p.nk, p.kshape, p.kout), acc, p.n_red, d.mean);
      } else {
        partial[k * d.pk + s * d.ps] = acc;
      }
    }
  }
}

// ---- columns: one thread per (output, segment) -----------------------------------------------------

template <class R>
__global__ void __launch_bounds__(kBlock) reduce_cols(const typename R::T* __restrict__ x, typename R::Out* __restrict__ y,
                                                      typename R::A* __restrict__ partial, ReducePlan p, Dest d) {
  using A = typename R::A;
  const int64_t s = blockIdx.y;
  const int64_t begin = s * d.seg;
  const int64_t end = begin + d.seg < p.n_red ? begin + d.seg : p.n_red;
  const int64_t L = p.rshape[p.nr - 1], rs = p.rin[p.nr - 1];
  const int nro = p.nr - 1;
  KILN_GRID_STRIDE_LOOP(k, p.n_out) {
    const typename R::T* xk = x + offset_of(k, p.nk, p.kshape, p.kin);
    A acc = R::identity();
    int64_t m = begin / L, i = begin - m * L;
    int64_t base = offset_of(m, nro, p.rshape, p.rin);
    for (int64_t r = begin; r < end; ++r) {
      acc = R::combine(acc, R::element(xk[base + i * rs], r));
      if (++i == L) {
        i = 0;
        ++m;
        base = offset_of(m, nro, p.rshape, p.rin);
      }
    }
    if (d.S == 1) {
      R::write(y + offset_of(k, p.nk, p.kshape, p.kout), acc, p.n_red, d.mean);
    } else {
      partial[k * d.pk + s * d.ps] = acc;
    }
  }
}

// ---- folding the partials of each output, segments in order ---------------------------------------

// One thread per output, segments 0, 1, ... in turn.
template <class R>
__global__ void __launch_bounds__(kBlock) fold_seq(const typename R::A* __restrict__ partial, typename R::Out* __restrict__ y,
                                                   ReducePlan p, Dest d) {
  KILN_GRID_STRIDE_LOOP(k, p.n_out) {
    typename R::A acc = R::identity();
    for (int64_t s = 0; s < d.S; ++s) acc = R::combine(acc, partial[k * d.pk + s * d.ps]);
    R::write(y + offset_of(k, p.nk, p.kshape, p.kout), acc, p.n_red, d.mean);
  }
}

// One block per output: thread t folds segments t, t + 256, ... in order, then the block tree.
template <class R>
__global__ void __launch_bounds__(kBlock) fold_block(const typename R::A* __restrict__ partial, typename R::Out* __restrict__ y,
                                                     ReducePlan p, Dest d) {
  using A = typename R::A;
  __shared__ A smem[kBlock / 32];
  for (int64_t k = blockIdx.x; k < p.n_out; k += gridDim.x) {
    A acc = R::identity();
    for (int64_t s = threadIdx.x; s < d.S; s += kBlock) acc = R::combine(acc, partial[k * d.pk + s * d.ps]);
    acc = group_combine<kBlock, R>(acc, smem);
    if (threadIdx.x == 0) R::write(y + offset_of(k, p.nk, p.kshape, p.kout), acc, p.n_red, d.mean);
  }
}

// ---- the driver ------------------------------------------------------------------------------------

constexpr int64_t kSegRows = 16384;        // rows scheme: reduced elements per segment when outputs are few
constexpr int64_t kFewOutputs = 1024;      // rows scheme: from this many outputs on, one segment each
constexpr int64_t kMaxItems = 65536;       // rows scheme: at most this many (output, segment) items when split
constexpr int64_t kColThreads = 65536;     // columns scheme: aim for this many (output, segment) threads
constexpr int64_t kColMinRows = 64;        // columns scheme: at least this many rows per segment
constexpr int64_t kColMaxSegments = 4096;  // columns scheme: at most this many segments (grid y)
constexpr int64_t kFoldBlockFrom = 64;     // fold with a block per output from this many segments on

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
unsigned blocks_for(int64_t items, int64_t per_block) {
  int64_t b = ceil_div(items, per_block);
  if (b > kMaxBlocks) b = kMaxBlocks;
  if (b < 1) b = 1;
  return static_cast<unsigned>(b);
}

template <int KIND, class E>
Status run(const ReducePlan& p, const View& xv, const View& yv, int device, cudaStream_t st, const char* op) {
  using R = Red<KIND, E>;
  using A = typename R::A;
  const typename R::T* x = reinterpret_cast<const typename R::T*>(xv.data());
  typename R::Out* y = reinterpret_cast<typename R::Out*>(yv.data());
  Dest d;
  d.mean = p.op == ReduceOp::Mean;
  const bool columns = p.nk >= 1 && p.nr >= 1 && p.kin[p.nk - 1] < p.rin[p.nr - 1] && p.n_out >= 32 && p.n_red > 0;
  if (columns) {
    d.S = ceil_div(kColThreads, p.n_out);
    const int64_t by_rows = ceil_div(p.n_red, kColMinRows);
    if (d.S > by_rows) d.S = by_rows;
    if (d.S > kColMaxSegments) d.S = kColMaxSegments;
    if (d.S < 1) d.S = 1;
  } else {
    d.S = p.n_out >= kFewOutputs || p.n_red <= 2 * kSegRows ? 1 : ceil_div(p.n_red, kSegRows);
    const int64_t cap = ceil_div(kMaxItems, p.n_out);
    if (d.S > cap) d.S = cap < 1 ? 1 : cap;
  }
  d.seg = d.S == 1 ? p.n_red : ceil_div(p.n_red, d.S);
  if (d.S > 1) d.S = ceil_div(p.n_red, d.seg);  // no empty trailing segment
  // Partials: [n_out][S] for rows (a block folds contiguous ones), [S][n_out] for columns.
  d.pk = columns ? 1 : d.S;
  d.ps = columns ? p.n_out : 1;
  DeviceScratch scratch;
  A* partial = nullptr;
  if (d.S > 1) {
    KILN_RETURN_IF_ERROR(scratch.alloc(device, static_cast<size_t>(p.n_out * d.S) * sizeof(A)));
    partial = scratch.as<A>();
  }
  if (columns) {
    int64_t bs = ceil_div(p.n_out, 32) * 32;
    if (bs > kBlock) bs = kBlock;
    const dim3 grid(blocks_for(p.n_out, bs), static_cast<unsigned>(d.S));
    reduce_cols<R><<<grid, static_cast<unsigned>(bs), 0, st>>>(x, y, partial, p, d);
  } else {
    const int64_t items = p.n_out * d.S;
    if (d.seg <= 8) {
      reduce_rows<R, 1><<<blocks_for(items, kBlock), kBlock, 0, st>>>(x, y, partial, p, d);
    } else if (d.seg <= 1024) {
      reduce_rows<R, 32><<<blocks_for(items, kBlock / 32), kBlock, 0, st>>>(x, y, partial, p, d);
    } else {
      reduce_rows<R, kBlock><<<blocks_for(items, 1), kBlock, 0, st>>>(x, y, partial, p, d);
    }
  }
  KILN_CUDA_LAUNCH_CHECK(op);
  if (d.S > 1) {
    if (d.S >= kFoldBlockFrom) {
      fold_block<R><<<blocks_for(p.n_out, 1), kBlock, 0, st>>>(partial, y, p, d);
    } else {
      fold_seq<R><<<blocks_for(p.n_out, kBlock), kBlock, 0, st>>>(partial, y, p, d);
    }
    KILN_CUDA_LAUNCH_CHECK(op);
  }
  return Status::Ok();
}

template <class E>
Status run_dtype(const ReducePlan& p, const View& x, const View& y, int device, cudaStream_t s, const char* op) {
  switch (p.op) {
    case ReduceOp::Sum:
    case ReduceOp::Mean: return run<kSum, E>(p, x, y, device, s, op);
    case ReduceOp::Max: return run<kMax, E>(p, x, y, device, s, op);
    case ReduceOp::Min: return run<kMin, E>(p, x, y, device, s, op);
    case ReduceOp::Argmax: return run<kArg, E>(p, x, y, device, s, op);
  }
  return Status(StatusCode::Internal, std::string("kiln: unknown reduction ") + op);
}

Status reduce_kernel(const KernelArgs& args) {
  ReducePlan plan;
  KILN_RETURN_IF_ERROR(prepare_reduce(args, &plan));
  if (plan.n_out == 0) return Status::Ok();
  const View &x = args.in[0], &y = args.out[0];
  const int device = y.device.index;
  KILN_CUDA_ENTER(guard, device, args.op, s);
  switch (x.dtype) {
    case DType::Float32: return run_dtype<el::F32>(plan, x, y, device, s, args.op);
    case DType::Float16: return run_dtype<el::F16>(plan, x, y, device, s, args.op);
    case DType::BFloat16: return run_dtype<el::BF16>(plan, x, y, device, s, args.op);
    case DType::Int32:
      if (plan.op == ReduceOp::Mean) break;
      return run_dtype<el::I32>(plan, x, y, device, s, args.op);
    default: break;
  }
  return no_kernel(args.op, x.dtype, DeviceKind::CUDA);
}

const bool kRegistered = register_reduce_kernels(DeviceKind::CUDA, reduce_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
