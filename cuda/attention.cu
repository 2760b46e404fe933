// CUDA kernels 'attention' and 'attention_backward' (native/KERNELS.md
// "Attention") for float32, float16 and bfloat16. Validation:
// prepare_attention (kiln/nn_ops.h), shared with the CPU kernels
// (native/cpu/attention.cpp), which are the reference.
//
// Paths (the kernels: attention_tc.cuh, attention_simt.cuh):
//   - float16 / bfloat16 with D <= 128 and Dv <= 128: tensor-core kernels
//     (flash-attention 2 forward; backward with dK / dV per key tile and dQ
//     per query tile), head dims padded to 64 or 128 in shared memory;
//   - float32, and 16-bit with a head dim > 128: SIMT kernels in float32 that
//     follow the CPU kernels' arithmetic (any D, Dv: output columns in slabs
//     of 128, scores from 32-column chunks).
// Everything is deterministic (no atomics; fixed tiles and orders), and
// gk / gv sum the group's query heads in head order inside one block.
#include <algorithm>
#include <cstdint>
#include <string>

#include "attention_common.cuh"
#include "attention_simt.cuh"
#include "attention_tc.cuh"
#include "common.cuh"
#include "kiln/cuda.h"
#include "kiln/element.h"
#include "kiln/nn_ops.h"
#include "kiln/registry.h"

namespace kiln {
namespace cuda {
namespace {

using namespace attn;

constexpr int64_t kMaxGridX = 2147483647;
constexpr int kTcMaxHeadDim = 128;

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

Operand4 operand(const View& v) {
  Operand4 o;
  o.p = v.data();
  o.s0 = v.strides[0];
  o.s1 = v.strides[1];
  o.s2 = v.strides[2];
  o.s3 = v.strides[3];
  // 16-byte chunks along the last dim: unit stride and every row start 16-byte aligned.
  const int64_t es = static_cast<int64_t>(dtype_size(v.dtype));
  o.vec = aligned16(v.data()) && (v.strides[3] == 1 || v.shape[3] <= 1) && (v.strides[0] * es) % 16 == 0 &&
          (v.strides[1] * es) % 16 == 0 && (v.strides[2] * es) % 16 == 0;
  return o;
}

Status too_large(const char* op, const std::string& what) {
  return Status(StatusCode::ShapeError, std::string("kiln: ") + op + ": " + what + " is too large for the CUDA kernel");
}

// Largest dynamic shared memory a block of `device` may use.
int smem_optin(int device) {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return 48 * 1024;
  }
  return v;
}

Status need_smem(const char* op, int device, size_t bytes) {
  if (static_cast<size_t>(smem_optin(device)) >= bytes) return Status::Ok();
  return Status(StatusCode::Internal, std::string("kiln: ") + op + ": the kernel needs " + std::to_string(bytes) +
                                          " bytes of shared memory per block; cuda:" + std::to_string(device) +
                                          " allows " + std::to_string(smem_optin(device)));
}

bool use_tc(DType t, const AttentionPlan& plan) {
  return t != DType::Float32 && plan.dim <= kTcMaxHeadDim && plan.v_dim <= kTcMaxHeadDim;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- forward -----------------------------------------------------------------------------------------

template <class E>
Status forward(const KernelArgs& args, const AttentionPlan& plan, int device, cudaStream_t s) {
  const View& lse = args.out[1];
  FwdParams p;
  p.q = operand(args.in[0]);
  p.k = operand(args.in[1]);
  p.v = operand(args.in[2]);
  p.o = operand(args.out[0]);
  p.lse = reinterpret_cast<float*>(lse.data());
  p.ls0 = lse.strides[0];
  p.ls1 = lse.strides[1];
  p.ls2 = lse.strides[2];
  p.B = plan.batch;
  p.Hq = plan.q_heads;
  p.Hk = plan.kv_heads;
  p.Sq = plan.q_len;
  p.Sk = plan.kv_len;
  p.D = plan.dim;
  p.Dv = plan.v_dim;
  p.G = plan.group;
  p.causal = plan.causal ? 1 : 0;
  p.c = static_cast<float>(plan.scale * kLog2e);
  const DType t = args.in[0].dtype;
  cudaError_t err;
  if (use_tc(t, plan)) {
    if constexpr (!std::is_same<E, el::F32>::value) {
      p.nqb = ceil_div(p.Sq, kTBQ);
      p.nslab = 1;
      const int64_t blocks = p.B * p.Hq * p.nqb;
      if (blocks > kMaxGridX) return too_large(args.op, "B * Hq * ceil(Sq / 64)");
      if (std::max(p.D, p.Dv) <= 64) {
        KILN_RETURN_IF_ERROR(need_smem(args.op, device, tc_fwd_smem<64>()));
        err = launch_kernel(attn_fwd_tc_kernel<E, 64>, dim3(static_cast<unsigned>(blocks)), dim3(kTcThreads),
                            tc_fwd_smem<64>(), s, p);
      } else {
        KILN_RETURN_IF_ERROR(need_smem(args.op, device, tc_fwd_smem<128>()));
        err = launch_kernel(attn_fwd_tc_kernel<E, 128>, dim3(static_cast<unsigned>(blocks)), dim3(kTcThreads),
                            tc_fwd_smem<128>(), s, p);
      }
      KILN_CUDA_RETURN_IF_ERROR(err, args.op);
      return Status::Ok();
    }
  }
  p.nqb = ceil_div(p.Sq, kSBQ);
  p.nslab = static_cast<int>(std::max<int64_t>(1, ceil_div(p.Dv, kSlab)));
  const int64_t blocks = p.B * p.Hq * p.nqb * p.nslab;
  if (blocks > kMaxGridX) return too_large(args.op, "B * Hq * ceil(Sq / 64) * ceil(Dv / 128)");
  KILN_RETURN_IF_ERROR(need_smem(args.op, device, kSimtFwdSmem));
  err = launch_kernel(attn_fwd_simt_kernel<E>, dim3(static_cast<unsigned>(blocks)), dim3(kSimtThreads), kSimtFwdSmem,
                      s, p);
  KILN_CUDA_RETURN_IF_ERROR(err, args.op);
  return Status::Ok();
}

// ---- backward ----------------------------------------------------------------------------------------

// Device scratch freed (stream-ordered) at scope exit.
class Scratch {
 public:
  Scratch(int device, size_t bytes) : device_(device), bytes_(bytes) { status_ = kiln::cuda::malloc(device, bytes, &ptr_); }
  ~Scratch() { kiln::cuda::free(device_, ptr_, bytes_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  const Status& status() const { return status_; }
  void* ptr() const { return ptr_; }

 private:
  int device_;
  size_t bytes_;
  void* ptr_ = nullptr;
  Status status_;
};

template <class E>
Status backward(const KernelArgs& args, const AttentionPlan& plan, int device, cudaStream_t s) {
  const View& lse = args.in[4];
  BwdParams p;
  p.q = operand(args.in[0]);
  p.k = operand(args.in[1]);
  p.v = operand(args.in[2]);
  p.go = operand(args.in[5]);
  p.gq = operand(args.out[0]);
  p.gk = operand(args.out[1]);
  p.gv = operand(args.out[2]);
  p.B = plan.batch;
  p.Hq = plan.q_heads;
  p.Hk = plan.kv_heads;
  p.Sq = plan.q_len;
  p.Sk = plan.kv_len;
  p.D = plan.dim;
  p.Dv = plan.v_dim;
  p.G = plan.group;
  p.causal = plan.causal ? 1 : 0;
  p.c = static_cast<float>(plan.scale * kLog2e);
  p.scale = static_cast<float>(plan.scale);

  const int64_t rows = p.B * p.Hq * p.Sq;
  Scratch scratch(device, static_cast<size_t>(std::max<int64_t>(rows, 1)) * 2 * sizeof(float));
  KILN_RETURN_IF_ERROR(scratch.status());
  float* delta = static_cast<float*>(scratch.ptr());
  p.delta = delta;
  p.lse2 = delta + rows;
  cudaError_t err = cudaSuccess;
  if (rows > 0) {
    PrepParams pp;
    pp.o = operand(args.in[3]);
    pp.go = p.go;
    pp.lse = reinterpret_cast<const float*>(lse.data());
    pp.ls0 = lse.strides[0];
    pp.ls1 = lse.strides[1];
    pp.ls2 = lse.strides[2];
    pp.delta = delta;
    pp.lse2 = delta + rows;
    pp.Hq = p.Hq;
    pp.Sq = p.Sq;
    pp.Dv = p.Dv;
    pp.rows = rows;
    err = launch_kernel(attn_bwd_prep_kernel<E>, dim3(grid_for(rows)), dim3(kBlock), 0, s, pp);
    KILN_CUDA_RETURN_IF_ERROR(err, args.op);
  }

  const int64_t kv_rows = p.B * p.Hk * p.Sk;
  if (use_tc(args.in[0].dtype, plan)) {
    if constexpr (!std::is_same<E, el::F32>::value) {
      // gq per 64-query tile; gk, gv per 64-key tile (Sq == 0: zeros; Sk == 0: gq zeros).
      const bool small = std::max(p.D, p.Dv) <= 64;
      if (rows > 0 && p.D > 0) {
        p.nqb = ceil_div(p.Sq, kTBQQ);
        const int64_t blocks = p.B * p.Hq * p.nqb;
        if (blocks > kMaxGridX) return too_large(args.op, "B * Hq * ceil(Sq / 64)");
        const size_t smem = small ? tc_bwd_q_smem<64>() : tc_bwd_q_smem<128>();
        KILN_RETURN_IF_ERROR(need_smem(args.op, device, smem));
        err = small ? launch_kernel(attn_bwd_q_tc_kernel<E, 64>, dim3(static_cast<unsigned>(blocks)), dim3(kTcThreads),
                                    smem, s, p)
                    : launch_kernel(attn_bwd_q_tc_kernel<E, 128>, dim3(static_cast<unsigned>(blocks)),
                                    dim3(kTcThreads), smem, s, p);
        KILN_CUDA_RETURN_IF_ERROR(err, args.op);
      }
      if (kv_rows > 0 && p.D + p.Dv > 0) {
        p.nkb = ceil_div(p.Sk, kTBKK);
        const int64_t blocks = p.B * p.Hk * p.nkb;
        if (blocks > kMaxGridX) return too_large(args.op, "B * Hk * ceil(Sk / 64)");
        const size_t smem = small ? tc_bwd_kv_smem<64>() : tc_bwd_kv_smem<128>();
        KILN_RETURN_IF_ERROR(need_smem(args.op, device, smem));
        err = small ? launch_kernel(attn_bwd_kv_tc_kernel<E, 64>, dim3(static_cast<unsigned>(blocks)),
                                    dim3(kTcThreads), smem, s, p)
                    : launch_kernel(attn_bwd_kv_tc_kernel<E, 128>, dim3(static_cast<unsigned>(blocks)),
                                    dim3(kTcThreads), smem, s, p);
        KILN_CUDA_RETURN_IF_ERROR(err, args.op);
      }
      return Status::Ok();
    }
  }

  // SIMT. gq: per query tile (and D slab). Sk == 0: zeros (no key tile).
  if (rows > 0 && p.D > 0) {
    p.nqb = ceil_div(p.Sq, kSBQ);
    p.nslab = static_cast<int>(ceil_div(p.D, kSlab));
    const int64_t blocks = p.B * p.Hq * p.nqb * p.nslab;
    if (blocks > kMaxGridX) return too_large(args.op, "B * Hq * ceil(Sq / 64) * ceil(D / 128)");
    KILN_RETURN_IF_ERROR(need_smem(args.op, device, kSimtBwdQSmem));
    err = launch_kernel(attn_bwd_q_simt_kernel<E>, dim3(static_cast<unsigned>(blocks)), dim3(kSimtThreads),
                        kSimtBwdQSmem, s, p);
    KILN_CUDA_RETURN_IF_ERROR(err, args.op);
  }
  // gk, gv: per key tile (and [D | Dv] slab). Sq == 0: zeros (no query tile).
  if (kv_rows > 0 && p.D + p.Dv > 0) {
    p.nkb = ceil_div(p.Sk, kSBK);
    p.nslab = static_cast<int>(ceil_div(p.D + p.Dv, kSlab));
    const int64_t blocks = p.B * p.Hk * p.nkb * p.nslab;
    if (blocks > kMaxGridX) return too_large(args.op, "B * Hk * ceil(Sk / 64) * ceil((D + Dv) / 128)");
    KILN_RETURN_IF_ERROR(need_smem(args.op, device, kSimtBwdKVSmem));
    err = launch_kernel(attn_bwd_kv_simt_kernel<E>, dim3(static_cast<unsigned>(blocks)), dim3(kSimtThreads),
                        kSimtBwdKVSmem, s, p);
    KILN_CUDA_RETURN_IF_ERROR(err, args.op);
  }
  return Status::Ok();
}

// ---- entry -------------------------------------------------------------------------------------------

template <class E>
Status run_typed(const KernelArgs& args, const AttentionPlan& plan, int device, cudaStream_t s) {
  return plan.backward ? backward<E>(args, plan, device, s) : forward<E>(args, plan, device, s);
}

Status attention_kernel(const KernelArgs& args) {
  AttentionPlan plan;
  KILN_RETURN_IF_ERROR(prepare_attention(args, &plan));
  if (!plan.backward && plan.batch * plan.q_heads * plan.q_len == 0) return Status::Ok();
  if (plan.backward && plan.batch * plan.q_heads == 0) return Status::Ok();
  const int device = args.in[0].device.index;
  KILN_CUDA_ENTER(guard, device, args.op, s);
  switch (args.in[0].dtype) {
    case DType::Float32: return run_typed<el::F32>(args, plan, device, s);
    case DType::Float16: return run_typed<el::F16>(args, plan, device, s);
    case DType::BFloat16: return run_typed<el::BF16>(args, plan, device, s);
    default: break;
  }
  return no_kernel(args.op, args.in[0].dtype, DeviceKind::CUDA);
}

KILN_REGISTER_KERNELS("attention", DeviceKind::CUDA, kFloat16Plus, attention_kernel);
KILN_REGISTER_KERNELS("attention_backward", DeviceKind::CUDA, kFloat16Plus, attention_kernel);

}  // namespace
}  // namespace cuda
}  // namespace kiln
