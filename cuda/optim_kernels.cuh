// The multi-tensor machinery of the CUDA optimizer kernels (cuda/optim.cu):
// the launch table (Batch), how a list of tensors is cut into chunks and
// batches, and what one thread of a block does. The per-thread code is plain
// C++ apart from the qualifiers, so that it can also be compiled for the host
// and run thread by thread (to check the indexing on a machine without a GPU);
// the block-wide sums live in optim.cu.
//
// Work: tensor i is cut into chunks of kChunk elements; a launch covers up to
// kMaxB chunks of up to kMaxT tensors (one block of kThreads threads per
// chunk), described by a Batch passed as a __grid_constant__ kernel parameter
// (about 16 KB: CUDA >= 12.1 and Volta or newer take up to 32 KB). Thread t of a
// block takes elements begin + 4 t + 4 kThreads k + j (j = 0..3, k = 0, 1, ..):
// with one 16-byte (float32) or 8-byte (16-bit) access per operand when every
// operand of the tensor is aligned for it, else element by element; the order
// of the arithmetic is the same either way.
//
// Norms (LAMB, LARS, the gradient sum of squares): each thread sums its
// elements' squares in float32 (fma, in the order above), the block adds the
// thread sums in a fixed tree (warp shuffles, then the warp sums) into one
// float32 partial per chunk; a second kernel adds a tensor's chunk partials in
// float64 in chunk order. No atomics: the same inputs give the same bits.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kiln/element.h"
#include "kiln/optim.h"

#if defined(__CUDACC__)
#define KILN_OD __device__ __forceinline__
#define KILN_OD_FMA(a, b, c) __fmaf_rn((a), (b), (c))
#else
#define KILN_OD inline
#define KILN_OD_FMA(a, b, c) std::fmaf((a), (b), (c))
#endif

namespace kiln {
namespace cuda {
namespace optk {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 16384;  // elements per block
constexpr int kMaxT = 128;         // tensors per launch
constexpr int kMaxB = 1280;        // blocks (chunks) per launch
constexpr int kRoles = 6;
enum Role : int { kP = 0, kG = 1, kM = 2, kV = 3, kX = 4 /* max_exp_avg_sq or momentum buffer */, kW = 5 /* master */ };
enum Flag : uint8_t { kAdapt = 1, kFirst = 2 };

struct Batch {
  void* ptr[kRoles][kMaxT];
  int64_t n[kMaxT];
  double wd[kMaxT];
  float s[4][kMaxT];          // per-tensor scalars (see each kernel)
  int32_t index[kMaxT];       // the tensor's index in the call
  int32_t chunk_base[kMaxT];  // the tensor's first chunk among all chunks of the call (partials)
  int32_t chunk0[kMaxT];      // the tensor's chunk at this batch's first block of it
  uint8_t flags[kMaxT];
  uint8_t slot[kMaxB];
  uint16_t rel[kMaxB];  // block's chunk - chunk0[slot]
  int32_t count;        // tensors
  int32_t blocks;
};
static_assert(sizeof(Batch) <= 16384, "Batch must stay well inside the 32 KB kernel parameter limit");

inline int64_t chunks_of(int64_t n) { return (n + kChunk - 1) / kChunk; }

// First chunk of every tensor among all chunks of the call, and the total.
inline int64_t chunk_bases(const std::vector<optim::OptimTensor>& t, std::vector<int32_t>* base) {
  base->resize(t.size());
  int64_t total = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    (*base)[i] = static_cast<int32_t>(total);
    total += chunks_of(t[i].n);
  }
  return total;
}

inline void* role_ptr(const View* v) { return v == nullptr ? nullptr : static_cast<void*>(v->data()); }

// Batches covering every chunk of the tensors `idx` (in order). fill(b, slot, i)
// sets the per-tensor scalars of tensor i in slot `slot`.
template <class Fill>
std::vector<Batch> make_batches(const std::vector<optim::OptimTensor>& t, const std::vector<int>& idx,
                                const std::vector<int32_t>& base, Fill fill) {
  std::vector<Batch> out;
  Batch b;
  std::memset(&b, 0, sizeof(b));
  for (int i : idx) {
    const int64_t nch = chunks_of(t[i].n);
    int slot = -1;
    for (int64_t c = 0; c < nch; ++c) {
      if (b.blocks == kMaxB || (slot < 0 && b.count == kMaxT)) {
        out.push_back(b);
        std::memset(&b, 0, sizeof(b));
        slot = -1;
      }
      if (slot < 0) {
        slot = b.count++;
        const optim::OptimTensor& x = t[i];
        b.ptr[kP][slot] = role_ptr(x.p);
        b.ptr[kG][slot] = role_ptr(x.g);
        b.ptr[kM][slot] = role_ptr(x.m);
        b.ptr[kV][slot] = role_ptr(x.v);
        b.ptr[kX][slot] = role_ptr(x.vmax != nullptr ? x.vmax : x.buf);
        b.ptr[kW][slot] = role_ptr(x.master);
        b.n[slot] = x.n;
        b.wd[slot] = x.wd;
        b.index[slot] = i;
        b.chunk_base[slot] = base[i];
        b.chunk0[slot] = static_cast<int32_t>(c);
        b.flags[slot] = static_cast<uint8_t>((x.adapt ? kAdapt : 0) | (x.first ? kFirst : 0));
        fill(b, slot, i);
      }
      b.slot[b.blocks] = static_cast<uint8_t>(slot);
      b.rel[b.blocks] = static_cast<uint16_t>(c - b.chunk0[slot]);
      ++b.blocks;
    }
  }
  if (b.blocks > 0) out.push_back(b);
  return out;
}

// ---- element access ------------------------------------------------------------------------

template <class T>
KILN_OD bool aligned4(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & (4 * sizeof(T) - 1)) == 0;
}

// x[j] = element i + j (0 beyond end), as float32.
template <class E>
KILN_OD void ld4(const typename E::T* p, int64_t i, int64_t end, bool vec, float (&x)[4]) {
  using T = typename E::T;
  if (vec && i + 4 <= end) {
    T t[4];
#if defined(__CUDACC__)
    if constexpr (sizeof(T) == 4) {
      *reinterpret_cast<float4*>(t) = *reinterpret_cast<const float4*>(p + i);
    } else {
      *reinterpret_cast<uint2*>(t) = *reinterpret_cast<const uint2*>(p + i);
    }
#else
    std::memcpy(t, p + i, sizeof(t));
#endif
#pragma unroll
    for (int j = 0; j < 4; ++j) x[j] = E::to_f32(t[j]);
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) x[j] = i + j < end ? E::to_f32(p[i + j]) : 0.0f;
  }
}

template <class E>
KILN_OD void st4(typename E::T* p, int64_t i, int64_t end, bool vec, const float (&x)[4]) {
  using T = typename E::T;
  T t[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) t[j] = E::from_f32(x[j]);
  if (vec && i + 4 <= end) {
#if defined(__CUDACC__)
    if constexpr (sizeof(T) == 4) {
      *reinterpret_cast<float4*>(p + i) = *reinterpret_cast<const float4*>(t);
    } else {
      *reinterpret_cast<uint2*>(p + i) = *reinterpret_cast<const uint2*>(t);
    }
#else
    std::memcpy(p + i, t, sizeof(t));
#endif
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (i + j < end) p[i + j] = t[j];
    }
  }
}

struct Span {
  int slot;
  int64_t begin, end;
};

KILN_OD Span span_of(const Batch& b, int block) {
  Span r;
  r.slot = b.slot[block];
  r.begin = (static_cast<int64_t>(b.chunk0[r.slot]) + b.rel[block]) * kChunk;
  const int64_t e = r.begin + kChunk;
  r.end = e < b.n[r.slot] ? e : b.n[r.slot];
  return r;
}

template <class E, bool MASTER>
KILN_OD void load_param(const Batch& b, int slot, int64_t i, int64_t end, bool vec, float (&x)[4]) {
  if (MASTER) {
    ld4<el::F32>(static_cast<const float*>(b.ptr[kW][slot]), i, end, vec, x);
  } else {
    ld4<E>(static_cast<const typename E::T*>(b.ptr[kP][slot]), i, end, vec, x);
  }
}

template <class E, bool MASTER>
KILN_OD void store_param(const Batch& b, int slot, int64_t i, int64_t end, bool vec, const float (&x)[4]) {
  if (MASTER) st4<el::F32>(static_cast<float*>(b.ptr[kW][slot]), i, end, vec, x);
  st4<E>(static_cast<typename E::T*>(b.ptr[kP][slot]), i, end, vec, x);
}

// p, g (dtype E) and the float32 roles of `mask` (bit r: role r) aligned for 4-element accesses.
template <class E>
KILN_OD bool vec_ok(const Batch& b, int slot, unsigned mask) {
  using T = typename E::T;
  bool ok = true;
  for (int r = 0; r < kRoles; ++r) {
    if (!(mask & (1u << r))) continue;
    ok = ok && (r == kP || r == kG ? aligned4<T>(b.ptr[r][slot]) : aligned4<float>(b.ptr[r][slot]));
  }
  return ok;
}

// ---- per-thread work ------------------------------------------------------------------------
// Scalars in Batch::s: adamw [decay, wd, step_size, bc2_sqrt]; lamb [bc1, bc2, wd, decay];
// lars [wd]. Per-tensor results of the norms (lamb lr*r, lars a) come from `scal[index]`.

template <class E, bool MASTER, bool AMS, bool L2>
KILN_OD void adamw_thread(const Batch& b, const optim::AdamwGroup& c, int block, int tid) {
  const Span sp = span_of(b, block);
  const int k = sp.slot;
  const optim::AdamwScalars s{b.s[0][k], b.s[1][k], b.s[2][k], b.s[3][k]};
  const unsigned mask = (1u << kP) | (1u << kG) | (1u << kM) | (1u << kV) | (AMS ? 1u << kX : 0u) | (MASTER ? 1u << kW : 0u);
  const bool vec = vec_ok<E>(b, k, mask);
  const typename E::T* g = static_cast<const typename E::T*>(b.ptr[kG][k]);
  float* m = static_cast<float*>(b.ptr[kM][k]);
  float* v = static_cast<float*>(b.ptr[kV][k]);
  float* x = static_cast<float*>(b.ptr[kX][k]);
  for (int64_t i = sp.begin + 4 * tid; i < sp.end; i += 4 * kThreads) {
    float pv[4], gv[4], mv[4], vv[4], xv[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    load_param<E, MASTER>(b, k, i, sp.end, vec, pv);
    ld4<E>(g, i, sp.end, vec, gv);
    ld4<el::F32>(m, i, sp.end, vec, mv);
    ld4<el::F32>(v, i, sp.end, vec, vv);
    if (AMS) ld4<el::F32>(x, i, sp.end, vec, xv);
#pragma unroll
    for (int j = 0; j < 4; ++j) pv[j] = optim::adamw_element<AMS, L2>(pv[j], gv[j], mv[j], vv[j], xv[j], c, s);
    st4<el::F32>(m, i, sp.end, vec, mv);
    st4<el::F32>(v, i, sp.end, vec, vv);
    if (AMS) st4<el::F32>(x, i, sp.end, vec, xv);
    store_param<E, MASTER>(b, k, i, sp.end, vec, pv);
  }
}

struct Pair {
  float a, b;
};

template <class E, bool MASTER, int MODE>
KILN_OD Pair lamb_a_thread(const Batch& b, const optim::LambGroup& c, int block, int tid) {
  const Span sp = span_of(b, block);
  const int k = sp.slot;
  const optim::LambScalars s{b.s[0][k], b.s[1][k], b.s[2][k], b.s[3][k], 0.0f};
  const unsigned mask = (1u << kP) | (1u << kG) | (1u << kM) | (1u << kV) | (MASTER ? 1u << kW : 0u);
  const bool vec = vec_ok<E>(b, k, mask);
  const typename E::T* g = static_cast<const typename E::T*>(b.ptr[kG][k]);
  float* m = static_cast<float*>(b.ptr[kM][k]);
  float* v = static_cast<float*>(b.ptr[kV][k]);
  Pair acc{0.0f, 0.0f};
  for (int64_t i = sp.begin + 4 * tid; i < sp.end; i += 4 * kThreads) {
    float pv[4], gv[4], mv[4], vv[4];
    load_param<E, MASTER>(b, k, i, sp.end, vec, pv);
    ld4<E>(g, i, sp.end, vec, gv);
    ld4<el::F32>(m, i, sp.end, vec, mv);
    ld4<el::F32>(v, i, sp.end, vec, vv);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      optim::lamb_moments<MODE>(pv[j], gv[j], mv[j], vv[j], c, s);
      const float u = optim::lamb_direction<MODE>(pv[j], mv[j], vv[j], c, s);
      if (i + j < sp.end) {
        acc.a = KILN_OD_FMA(pv[j], pv[j], acc.a);
        acc.b = KILN_OD_FMA(u, u, acc.b);
      }
    }
    st4<el::F32>(m, i, sp.end, vec, mv);
    st4<el::F32>(v, i, sp.end, vec, vv);
  }
  return acc;
}

template <class E, bool MASTER, int MODE>
KILN_OD void lamb_b_thread(const Batch& b, const optim::LambGroup& c, const float* scal, int block, int tid) {
  const Span sp = span_of(b, block);
  const int k = sp.slot;
  const optim::LambScalars s{b.s[0][k], b.s[1][k], b.s[2][k], b.s[3][k], scal[b.index[k]]};
  const unsigned mask = (1u << kP) | (1u << kM) | (1u << kV) | (MASTER ? 1u << kW : 0u);
  const bool vec = vec_ok<E>(b, k, mask);
  const float* m = static_cast<const float*>(b.ptr[kM][k]);
  const float* v = static_cast<const float*>(b.ptr[kV][k]);
  for (int64_t i = sp.begin + 4 * tid; i < sp.end; i += 4 * kThreads) {
    float pv[4], mv[4], vv[4];
    load_param<E, MASTER>(b, k, i, sp.end, vec, pv);
    ld4<el::F32>(m, i, sp.end, vec, mv);
    ld4<el::F32>(v, i, sp.end, vec, vv);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float u = optim::lamb_direction<MODE>(pv[j], mv[j], vv[j], c, s);
      pv[j] = optim::lamb_apply<MODE>(pv[j], u, s);
    }
    store_param<E, MASTER>(b, k, i, sp.end, vec, pv);
  }
}

template <class E, bool MASTER, bool COMBINED>
KILN_OD Pair lars_a_thread(const Batch& b, const optim::LarsGroup& c, int block, int tid) {
  const Span sp = span_of(b, block);
  const int k = sp.slot;
  const float wd = b.s[0][k];
  const unsigned mask = (1u << kP) | (1u << kG) | (MASTER ? 1u << kW : 0u);
  const bool vec = vec_ok<E>(b, k, mask);
  const typename E::T* g = static_cast<const typename E::T*>(b.ptr[kG][k]);
  Pair acc{0.0f, 0.0f};
  for (int64_t i = sp.begin + 4 * tid; i < sp.end; i += 4 * kThreads) {
    float pv[4], gv[4];
    load_param<E, MASTER>(b, k, i, sp.end, vec, pv);
    ld4<E>(g, i, sp.end, vec, gv);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float gi = optim::lars_grad(gv[j], c);
      if (COMBINED) gi = KILN_OPT_ADD(gi, KILN_OPT_MUL(wd, pv[j]));
      if (i + j < sp.end) {
        acc.a = KILN_OD_FMA(pv[j], pv[j], acc.a);
        acc.b = KILN_OD_FMA(gi, gi, acc.b);
      }
    }
  }
  return acc;
}

template <class E, bool MASTER, int STYLE, bool NEST>
KILN_OD void lars_b_thread(const Batch& b, const optim::LarsGroup& c, const float* scal, int block, int tid) {
  const Span sp = span_of(b, block);
  const int k = sp.slot;
  const bool adapt = (b.flags[k] & kAdapt) != 0, first = (b.flags[k] & kFirst) != 0;
  const optim::LarsScalars s{b.s[0][k], adapt ? scal[b.index[k]] : 1.0f};
  const bool mom = STYLE != optim::kLarsNone;
  const unsigned mask = (1u << kP) | (1u << kG) | (mom ? 1u << kX : 0u) | (MASTER ? 1u << kW : 0u);
  const bool vec = vec_ok<E>(b, k, mask);
  const typename E::T* g = static_cast<const typename E::T*>(b.ptr[kG][k]);
  float* buf = static_cast<float*>(b.ptr[kX][k]);
  for (int64_t i = sp.begin + 4 * tid; i < sp.end; i += 4 * kThreads) {
    float pv[4], gv[4], bv[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    load_param<E, MASTER>(b, k, i, sp.end, vec, pv);
    ld4<E>(g, i, sp.end, vec, gv);
    if (mom && !first) ld4<el::F32>(buf, i, sp.end, vec, bv);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float gj = optim::lars_grad(gv[j], c);
      pv[j] = first ? optim::lars_element<STYLE, NEST, true>(pv[j], gj, bv[j], c, s)
                    : optim::lars_element<STYLE, NEST, false>(pv[j], gj, bv[j], c, s);
    }
    if (mom) st4<el::F32>(buf, i, sp.end, vec, bv);
    store_param<E, MASTER>(b, k, i, sp.end, vec, pv);
  }
}

template <class E>
KILN_OD Pair sumsq_thread(const Batch& b, float gscale, int block, int tid) {
  const Span sp = span_of(b, block);
  const int k = sp.slot;
  const bool vec = vec_ok<E>(b, k, 1u << kG);
  const typename E::T* g = static_cast<const typename E::T*>(b.ptr[kG][k]);
  Pair acc{0.0f, 0.0f};
  for (int64_t i = sp.begin + 4 * tid; i < sp.end; i += 4 * kThreads) {
    float gv[4];
    ld4<E>(g, i, sp.end, vec, gv);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float x = KILN_OPT_DIV(gv[j], gscale);
      if (i + j < sp.end) {
        acc.a = KILN_OD_FMA(x, x, acc.a);
        acc.b = KILN_OPT_ADD(acc.b, KILN_OPT_MUL(x, 0.0f));  // NaN iff an element is inf or NaN
      }
    }
  }
  return acc;
}

// ---- per-tensor finish (one thread per slot; the chunk partials in float64, in order) -----------

struct Finish {
  double lr, eta, eps, min_coeff, max_coeff;
  int trust_clip, combined;
};

KILN_OD void sums_of(const Batch& b, int slot, const float* pa, const float* pb, double* sa, double* sb) {
  const int64_t nch = (b.n[slot] + kChunk - 1) / kChunk;
  const float* a = pa + b.chunk_base[slot];
  const float* c = pb + b.chunk_base[slot];
  double x = 0.0, y = 0.0;
  for (int64_t q = 0; q < nch; ++q) {
    x = KILN_OPT_DADD(x, static_cast<double>(a[q]));
    y = KILN_OPT_DADD(y, static_cast<double>(c[q]));
  }
  *sa = x;
  *sb = y;
}

// LAMB: scal[index] = lr * r (float32), ratio[index] = r (when given).
KILN_OD void lamb_finish_slot(const Batch& b, const Finish& f, const float* pa, const float* pb, float* scal,
                              float* ratio, int slot) {
  double wn2, un2;
  sums_of(b, slot, pa, pb, &wn2, &un2);
  const double r = optim::lamb_ratio(sqrt(wn2), sqrt(un2), (b.flags[slot] & kAdapt) != 0, f.trust_clip != 0,
                                     f.min_coeff, f.max_coeff);
  scal[b.index[slot]] = static_cast<float>(KILN_OPT_DMUL(f.lr, r));
  if (ratio != nullptr) ratio[b.index[slot]] = static_cast<float>(r);
}

// LARS: scal[index] = a (float32), also into ratio[index] when given.
KILN_OD void lars_finish_slot(const Batch& b, const Finish& f, const float* pa, const float* pb, float* scal, float* ratio,
                              int slot) {
  double wn2, gn2;
  sums_of(b, slot, pa, pb, &wn2, &gn2);
  const double a = optim::lars_ratio(sqrt(wn2), sqrt(gn2), b.wd[slot], f.eta, f.eps, f.combined != 0,
                                     f.trust_clip != 0, f.lr, (b.flags[slot] & kAdapt) != 0);
  scal[b.index[slot]] = static_cast<float>(a);
  if (ratio != nullptr) ratio[b.index[slot]] = static_cast<float>(a);
}

// Gradient sums of squares: out[index] = sum, out[n + index] = 1 when an element is inf or NaN.
KILN_OD void sumsq_finish_slot(const Batch& b, const float* pa, const float* pb, float* out, int n, int slot) {
  double ss, nf;
  sums_of(b, slot, pa, pb, &ss, &nf);
  out[b.index[slot]] = static_cast<float>(ss);
  out[n + b.index[slot]] = nf != nf ? 1.0f : 0.0f;
}

}  // namespace optk
}  // namespace cuda
}  // namespace kiln
