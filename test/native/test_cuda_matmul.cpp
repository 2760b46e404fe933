// Native tests for the CUDA 'matmul' kernel (suite 'cuda_matmul'): every path
// (cuBLASLt when loaded, and kiln's own GEMV / SIMT / tensor-core kernels with
// cuBLASLt turned off) against a float64 reference computed here, for float32,
// float16 and bfloat16; odd sizes, M = 1, K = 0, tile-boundary crossings,
// batches with broadcast (stride 0) and non-coalescable batch dims, transposed,
// padded, strided and misaligned operands; run-to-run determinism; error
// statuses; and, when the CPU 'matmul' kernel is registered, CPU vs CUDA.
//
// Error bound for a C element with exact value c = sum_k a_k b_k and
// S = sum_k |a_k b_k|: |C - c| <= (K + 2) 2^-24 S, plus the output rounding of
// 16-bit dtypes (u = 2^-11 float16, 2^-8 bfloat16): u (|c| + (K + 2) 2^-24 S),
// plus half the smallest float16 subnormal.
//
// Without a usable GPU (or built without CUDA) every test skips; the file uses
// only kiln's backend-neutral headers, so it compiles either way.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "device_testing.h"
#include "harness.h"
#include "kernel_calls.h"
#include "kiln/cpu_features.h"
#include "kiln/cuda.h"
#include "kiln/dtype.h"
#include "kiln/numerics.h"
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/storage.h"
#include "kiln/view.h"
#include "testing.h"

namespace {

using dvt::Buffer;
using dvt::kCpu;
using dvt::kGpu;
using dvt::require_cuda;
using kiln::Device;
using kiln::DType;
using kiln::Status;
using kiln::StatusCode;
using kiln::View;

const DType kDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16};

// Restores cuBLASLt's switch at the end of a test.
struct LtSwitch {
  bool before = kiln::cuda::cublaslt_enabled();
  ~LtSwitch() { kiln::cuda::set_cublaslt_enabled(before); }
};

// ---- element values ---------------------------------------------------------------------------

size_t esize(DType t) { return kiln::dtype_size(t); }

const char* dname(DType t) { return kiln::dtype_name(t); }

// ---- problems ------------------------------------------------------------------------------------

// One side of a product: logical matrix R x Cc per batch element, stored
// row-major (or transposed: stored Cc x R) with `step` elements between
// neighbours along the stored rows, `pad` extra elements per stored row, an
// element offset, and batch strides that are 0 (bcast), row-major over the
// batch dims, or reversed (perm: the first batch dim fastest; not coalescable).
struct Side {
  bool trans = false, bcast = false, perm = false;
  int64_t pad = 0, step = 1, off = 0;
};

struct Case {
  std::string name;
  std::vector<int64_t> batch;
  int64_t M = 1, K = 1, N = 1;
  Side a, b;
};

struct Operand {
  std::vector<int64_t> shape, strides;
  int64_t offset = 0;
  std::vector<uint8_t> bytes;  // the whole storage
};

int64_t prod(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

Operand make_operand(DType t, const std::vector<int64_t>& batch, int64_t R, int64_t Cc, const Side& s,
                     std::mt19937_64& rng) {
  Operand o;
  const int64_t rows_phys = s.trans ? Cc : R, cols_phys = s.trans ? R : Cc;
  const int64_t ld = std::max<int64_t>(cols_phys * s.step + s.pad, 1);
  const int64_t mat = std::max<int64_t>(rows_phys, 1) * ld;
  const int nb = static_cast<int>(batch.size());
  o.shape = batch;
  o.shape.push_back(R);
  o.shape.push_back(Cc);
  o.strides.assign(nb + 2, 0);
  if (!s.bcast) {
    int64_t st = mat;
    if (s.perm) {
      for (int d = 0; d < nb; ++d) {
        o.strides[d] = st;
        st *= batch[d];
      }
    } else {
      for (int d = nb - 1; d >= 0; --d) {
        o.strides[d] = st;
        st *= batch[d];
      }
    }
  }
  o.strides[nb] = s.trans ? s.step : ld;
  o.strides[nb + 1] = s.trans ? ld : s.step;
  o.offset = s.off;
  const int64_t elems = s.off + mat * (s.bcast ? 1 : std::max<int64_t>(prod(batch), 1));
  o.bytes.assign(static_cast<size_t>(elems) * esize(t), 0);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < elems; ++i) kt::encode(t, u(rng), o.bytes.data() + i * esize(t));
  return o;
}

struct Problem {
  DType t;
  Case c;
  Operand a, b;
  std::vector<int64_t> c_shape;
  int64_t c_elems = 0;
  std::vector<double> ref, bound;  // per C element (row-major)
};

Problem make_problem(DType t, const Case& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Problem p;
  p.t = t;
  p.c = c;
  p.a = make_operand(t, c.batch, c.M, c.K, c.a, rng);
  p.b = make_operand(t, c.batch, c.K, c.N, c.b, rng);
  p.c_shape = c.batch;
  p.c_shape.push_back(c.M);
  p.c_shape.push_back(c.N);
  p.c_elems = prod(p.c_shape);
  const int nb = static_cast<int>(c.batch.size());
  const double u_out = t == DType::Float16 ? std::ldexp(1.0, -11) : t == DType::BFloat16 ? std::ldexp(1.0, -8) : 0.0;
  const double gamma = static_cast<double>(c.K + 2) * std::ldexp(1.0, -24);
  p.ref.assign(p.c_elems, 0.0);
  p.bound.assign(p.c_elems, 0.0);
  const int64_t nbatch = prod(c.batch);
  const size_t es = esize(t);
  for (int64_t bi = 0; bi < nbatch; ++bi) {
    int64_t oa = p.a.offset, ob = p.b.offset, rem = bi;
    for (int d = nb - 1; d >= 0; --d) {
      const int64_t i = rem % c.batch[d];
      rem /= c.batch[d];
      oa += i * p.a.strides[d];
      ob += i * p.b.strides[d];
    }
    for (int64_t m = 0; m < c.M; ++m) {
      for (int64_t n = 0; n < c.N; ++n) {
        double sum = 0, abs_sum = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          const double x = kt::decode(t, &p.a.bytes[(oa + m * p.a.strides[nb] + k * p.a.strides[nb + 1]) * es]);
          const double y = kt::decode(t, &p.b.bytes[(ob + k * p.b.strides[nb] + n * p.b.strides[nb + 1]) * es]);
          sum += x * y;
          abs_sum += std::fabs(x * y);
        }
        const int64_t ci = (bi * c.M + m) * c.N + n;
        p.ref[ci] = sum;
        p.bound[ci] = gamma * abs_sum + u_out * (std::fabs(sum) + gamma * abs_sum) + std::ldexp(1.0, -25);
      }
    }
  }
  return p;
}

// Runs the problem on `dev`; *out gets C's storage (C starts as 0xA5 bytes).
Status run_problem(const Problem& p, Device dev, std::vector<uint8_t>* out) {
  const size_t es = esize(p.t);
  Buffer ba(dev, p.a.bytes.size()), bb(dev, p.b.bytes.size()), bc(dev, static_cast<size_t>(p.c_elems) * es);
  for (const Buffer* b : {&ba, &bb, &bc}) {
    if (!b->status().ok()) return b->status();
  }
  const std::vector<uint8_t> pattern(bc.bytes(), 0xA5);
  KILN_RETURN_IF_ERROR(kiln::storage_copy(dev, ba.ptr(), kCpu, p.a.bytes.data(), p.a.bytes.size()));
  KILN_RETURN_IF_ERROR(kiln::storage_copy(dev, bb.ptr(), kCpu, p.b.bytes.data(), p.b.bytes.size()));
  KILN_RETURN_IF_ERROR(kiln::storage_copy(dev, bc.ptr(), kCpu, pattern.data(), pattern.size()));
  const View va = dvt::make_view(dev, ba, dvt::Layout{p.t, p.a.shape, p.a.strides, p.a.offset});
  const View vb = dvt::make_view(dev, bb, dvt::Layout{p.t, p.b.shape, p.b.strides, p.b.offset});
  const View vc = dvt::make_view(dev, bc, dvt::Layout{p.t, p.c_shape, {}, 0});
  KILN_RETURN_IF_ERROR(kt::run("matmul", p.t, {va, vb}, {vc}));
  out->assign(bc.bytes(), 0);
  return kiln::storage_copy(kCpu, out->data(), dev, bc.ptr(), bc.bytes());
}

std::string describe(const Problem& p, const char* path) {
  const Case& c = p.c;
  std::string s = std::string(dname(p.t)) + " " + c.name + " [";
  for (int64_t d : c.batch) s += std::to_string(d) + ",";
  s += "] M=" + std::to_string(c.M) + " K=" + std::to_string(c.K) + " N=" + std::to_string(c.N) + " (" + path + ")";
  return s;
}

// Checks C against the float64 reference; returns the number of bad elements.
int check_result(const Problem& p, const std::vector<uint8_t>& got, const std::string& what) {
  const size_t es = esize(p.t);
  int bad = 0;
  for (int64_t i = 0; i < p.c_elems; ++i) {
    const double v = kt::decode(p.t, &got[i * es]);
    const double err = std::fabs(v - p.ref[i]);
    if (!(err <= p.bound[i])) {
      if (bad++ < 3) {
        KCHECK(false) << what << ": C[" << i << "] = " << v << ", float64 reference " << p.ref[i] << ", error " << err
                      << " > bound " << p.bound[i];
      }
    }
  }
  KCHECK_EQ(bad, 0) << what << ": elements outside the bound";
  return bad;
}

// ---- the cases ---------------------------------------------------------------------------------

Side T() {
  Side s;
  s.trans = true;
  return s;
}
Side Bc() {
  Side s;
  s.bcast = true;
  return s;
}

std::vector<Case> cases() {
  std::vector<Case> v;
  auto add = [&](const std::string& name, std::vector<int64_t> batch, int64_t M, int64_t K, int64_t N, Side a = Side(),
                 Side b = Side()) {
    Case c;
    c.name = name;
    c.batch = std::move(batch);
    c.M = M;
    c.K = K;
    c.N = N;
    c.a = a;
    c.b = b;
    v.push_back(c);
  };
  // plain shapes: GEMV (M <= 8), tiles, edges
  add("1x1x1", {}, 1, 1, 1);
  add("gemv", {}, 1, 7, 5);
  add("gemv-long", {}, 1, 300, 129);
  add("gemv-m3", {}, 3, 65, 70);
  add("gemv-m8", {}, 8, 33, 70);
  add("tile-m9", {}, 9, 33, 70);
  add("small", {}, 3, 5, 7);
  add("k1", {}, 17, 1, 19);
  add("n1", {}, 200, 40, 1);
  add("m1n1", {}, 1, 300, 1);
  add("square64", {}, 64, 64, 64);
  add("odd", {}, 127, 129, 65);
  add("tile-exact", {}, 128, 32, 128);
  add("tile-cross", {}, 129, 257, 130);
  add("long-k", {}, 33, 1000, 17);
  add("k0", {}, 5, 0, 6);
  add("m0", {}, 0, 3, 4);
  add("n0-batch", {2}, 3, 4, 0);
  // transposed operands (views of [K, M] / [N, K] storage)
  add("a-trans", {}, 65, 47, 33, T());
  add("b-trans", {}, 65, 48, 33, Side(), T());
  add("both-trans", {}, 70, 40, 130, T(), T());
  add("gemv-b-trans", {}, 4, 256, 300, Side(), T());      // k-contiguous B rows, 16-byte aligned
  add("gemv-b-trans-odd", {}, 4, 255, 300, Side(), T());  // ... not aligned
  add("gemv-a-trans", {}, 2, 64, 40, T());
  // padded, strided and offset operands
  {
    Side a, b;
    a.pad = 3;
    a.step = 2;
    b.pad = 5;
    add("strided", {}, 40, 37, 50, a, b);
    add("gemv-strided", {}, 5, 37, 50, a, b);
  }
  {
    Side a, b;
    a.off = 1;
    b.off = 3;
    add("misaligned", {}, 48, 64, 72, a, b);
    add("gemv-misaligned", {}, 2, 64, 72, a, b);
    Side at = T(), bt = T();
    at.off = 1;
    bt.pad = 1;
    add("misaligned-trans", {}, 48, 64, 72, at, bt);
  }
  {
    Side a, b;
    a.pad = 8;  // rows 16-byte aligned for 16-bit dtypes: vectorised loads with a leading dim > K
    b.pad = 8;
    add("padded-aligned", {}, 96, 40, 136, a, b);
  }
  // batches
  add("batched", {2, 3}, 17, 24, 40);
  add("batched-b-bcast", {2, 3}, 17, 24, 40, Side(), Bc());  // folds into one M = 102 product
  add("batched-a-bcast", {2, 3}, 17, 24, 40, Bc(), Side());
  add("batched-both-bcast", {3}, 17, 24, 40, Bc(), Bc());
  {
    Side a, b;
    a.perm = true;
    add("batched-perm", {2, 3}, 20, 16, 24, a, b);  // no single batch stride: not for cuBLASLt
    Side at = T(), bt = T();
    at.perm = true;
    bt.bcast = true;
    add("batched-perm-trans", {3, 2}, 9, 33, 17, at, bt);
  }
  add("batched-gemv", {3}, 1, 40, 50);
  add("batched-gemv-fold", {4}, 1, 40, 50, Side(), Bc());  // folds into M = 4
  add("batched-gemv-m2", {2, 2}, 2, 17, 9, Side(), T());
  add("batched-many", {66000}, 2, 2, 2);  // more batches than a grid dimension holds
  return v;
}

// The own kernels' float32 arithmetic (and the GEMV kernel's for 16-bit) is the
// CPU's documented one (native/cpu/gemm.h: c = 0; c = fma(a_k, b_k, c) in k
// order at the avx2 / avx512 levels), so their results are expected bit for bit.
bool expect_cpu_bits(DType t, const Case& c) {
  if (kiln::cpu::active_isa() == kiln::cpu::IsaLevel::Portable) return false;
  if (t == DType::Float32) return true;
  return std::max<int64_t>(prod(c.batch), 1) * c.M <= 8;
}

bool has_cpu_matmul(DType t) {
  const std::string want = std::string("matmul/cpu/") + dname(t);
  for (const std::string& k : kiln::registered_kernels()) {
    if (k == want) return true;
  }
  return false;
}

void sweep(DType t, bool use_lt) {
  LtSwitch restore;
  kiln::cuda::set_cublaslt_enabled(use_lt);
  const char* path = use_lt ? "cuBLASLt enabled" : "cuBLASLt off: own kernels";
  uint64_t seed = 1000 + static_cast<uint64_t>(t);
  for (const Case& c : cases()) {
    const Problem p = make_problem(t, c, seed++);
    const std::string what = describe(p, path);
    std::vector<uint8_t> got;
    const Status st = run_problem(p, kGpu, &got);
    KCHECK(st.ok()) << what << ": " << st.message();
    if (!st.ok()) continue;
    check_result(p, got, what);
    if (kt::failures_in_test() > 20) return;
  }
}

// =====================================================================================================

KTEST(cuda_matmul, float32_own_kernels) {
  require_cuda();
  sweep(DType::Float32, false);
}
KTEST(cuda_matmul, float16_own_kernels) {
  require_cuda();
  sweep(DType::Float16, false);
}
KTEST(cuda_matmul, bfloat16_own_kernels) {
  require_cuda();
  sweep(DType::BFloat16, false);
}

KTEST(cuda_matmul, float32_cublaslt) {
  require_cuda();
  if (!kiln::cuda::cublaslt_loaded()) kt::skip("cuBLASLt: " + kiln::cuda::cublaslt_status());
  sweep(DType::Float32, true);
}
KTEST(cuda_matmul, float16_cublaslt) {
  require_cuda();
  if (!kiln::cuda::cublaslt_loaded()) kt::skip("cuBLASLt: " + kiln::cuda::cublaslt_status());
  sweep(DType::Float16, true);
}
KTEST(cuda_matmul, bfloat16_cublaslt) {
  require_cuda();
  if (!kiln::cuda::cublaslt_loaded()) kt::skip("cuBLASLt: " + kiln::cuda::cublaslt_status());
  sweep(DType::BFloat16, true);
}

// cuBLASLt's switch and status, and that it really runs the expressible problems.
KTEST(cuda_matmul, cublaslt_switch) {
  require_cuda();
  LtSwitch restore;
  const std::string status = kiln::cuda::cublaslt_status();
  std::printf("    cuBLASLt: %s\n", status.c_str());
  KCHECK(!status.empty());
  if (!kiln::cuda::cublaslt_loaded()) {
    KCHECK(status.find("not found") != std::string::npos || status.find("KILN_CUBLASLT") != std::string::npos ||
           status.find("lacks") != std::string::npos || status.find("interface") != std::string::npos)
        << status;
    kt::skip("cuBLASLt is not loaded: " + status);
  }
  KCHECK(status.find("cuBLASLt 1") == 0) << status;
  Case c;
  c.name = "switch";
  c.M = 64;
  c.K = 64;
  c.N = 64;
  for (DType t : kDTypes) {
    const Problem p = make_problem(t, c, 7);
    std::vector<uint8_t> got;
    kiln::cuda::set_cublaslt_enabled(true);
    const uint64_t n0 = kiln::cuda::cublaslt_matmul_count();
    Status st = run_problem(p, kGpu, &got);
    KCHECK(st.ok()) << st.message();
    KCHECK_EQ(kiln::cuda::cublaslt_matmul_count(), n0 + 1) << dname(t) << ": cuBLASLt did not run a plain 64^3 product";
    if (st.ok()) check_result(p, got, describe(p, "cuBLASLt"));
    kiln::cuda::set_cublaslt_enabled(false);
    const uint64_t n1 = kiln::cuda::cublaslt_matmul_count();
    st = run_problem(p, kGpu, &got);
    KCHECK(st.ok()) << st.message();
    KCHECK_EQ(kiln::cuda::cublaslt_matmul_count(), n1) << dname(t) << ": cuBLASLt ran while turned off";
    if (st.ok()) check_result(p, got, describe(p, "own kernels"));
  }
  // A batch that is no single stride goes to the own kernels even when cuBLASLt is on.
  kiln::cuda::set_cublaslt_enabled(true);
  Case perm;
  perm.name = "perm";
  perm.batch = {2, 3};
  perm.M = 20;
  perm.K = 16;
  perm.N = 24;
  perm.a.perm = true;
  const Problem p = make_problem(DType::Float32, perm, 8);
  std::vector<uint8_t> got;
  const uint64_t n2 = kiln::cuda::cublaslt_matmul_count();
  const Status st = run_problem(p, kGpu, &got);
  KCHECK(st.ok()) << st.message();
  KCHECK_EQ(kiln::cuda::cublaslt_matmul_count(), n2);
  if (st.ok()) check_result(p, got, describe(p, "non-uniform batch"));
}

// Two runs of the same product give the same bits, on every path.
KTEST(cuda_matmul, deterministic) {
  require_cuda();
  LtSwitch restore;
  std::vector<Case> cs;
  {
    Case c;
    c.name = "tiles";
    c.M = 300;
    c.K = 500;
    c.N = 200;
    cs.push_back(c);
    c.name = "gemv";
    c.M = 1;
    c.K = 4096;
    c.N = 512;
    cs.push_back(c);
    c.name = "gemv-trans";
    c.M = 3;
    c.K = 1024;
    c.N = 256;
    c.b = T();
    cs.push_back(c);
    c.name = "batched-trans";
    c.batch = {4};
    c.M = 70;
    c.K = 96;
    c.N = 80;
    c.a = T();
    c.b = Side();
    cs.push_back(c);
  }
  for (int lt = 0; lt < 2; ++lt) {
    kiln::cuda::set_cublaslt_enabled(lt == 1);
    for (DType t : kDTypes) {
      for (const Case& c : cs) {
        const Problem p = make_problem(t, c, 99);
        std::vector<uint8_t> r1, r2;
        const Status s1 = run_problem(p, kGpu, &r1);
        const Status s2 = run_problem(p, kGpu, &r2);
        const std::string what = describe(p, lt ? "cuBLASLt enabled" : "own kernels");
        KCHECK(s1.ok() && s2.ok()) << what << ": " << s1.message() << s2.message();
        if (!s1.ok() || !s2.ok()) continue;
        KCHECK(r1 == r2) << what << ": two runs differ";
        check_result(p, r1, what);
      }
    }
  }
}

// CPU and CUDA agree (both within the bound of the float64 reference, and
// bit for bit where both follow the documented sequential-FMA order).
KTEST(cuda_matmul, cpu_vs_cuda) {
  require_cuda();
  LtSwitch restore;
  bool any = false;
  for (DType t : kDTypes) {
    if (!has_cpu_matmul(t)) continue;
    any = true;
    uint64_t seed = 5000 + static_cast<uint64_t>(t);
    for (int lt = 0; lt < 2; ++lt) {
      kiln::cuda::set_cublaslt_enabled(lt == 1);
      for (const Case& c : cases()) {
        if (prod(c.batch) > 1000) continue;  // keep the CPU side quick
        // Empty outputs are covered above; their contiguous strides contain 0s, which
        // the CPU kernel takes for a broadcast output (it does not allow those).
        if (prod(c.batch) * c.M * c.N == 0) continue;
        const Problem p = make_problem(t, c, seed++);
        const std::string what = describe(p, lt ? "cuBLASLt enabled" : "own kernels");
        std::vector<uint8_t> cpu, gpu;
        const Status sc = run_problem(p, kCpu, &cpu);
        const Status sg = run_problem(p, kGpu, &gpu);
        KCHECK(sc.ok()) << what << ": cpu: " << sc.message();
        KCHECK(sg.ok()) << what << ": cuda: " << sg.message();
        if (!sc.ok() || !sg.ok()) continue;
        check_result(p, cpu, what + " [cpu]");
        check_result(p, gpu, what + " [cuda]");
        if (lt == 0 && expect_cpu_bits(t, c)) {
          int64_t diffs = 0, first = -1;
          const size_t es = esize(t);
          for (int64_t i = 0; i < p.c_elems; ++i) {
            if (std::memcmp(&cpu[i * es], &gpu[i * es], es) != 0 && diffs++ == 0) first = i;
          }
          KCHECK_EQ(diffs, 0) << what << ": own kernel vs CPU (" << kiln::cpu::isa_name(kiln::cpu::active_isa())
                              << ") differ in the last bits, first at C[" << first
                              << "]: both should accumulate c = fma(a_k, b_k, c) for k = 0 .. K-1 from c = 0";
        }
        if (kt::failures_in_test() > 20) return;
      }
    }
  }
  if (!any) kt::skip("the CPU 'matmul' kernel is not registered (yet); the float64 reference tests cover CUDA");
}

// Bad operands give ShapeError / DTypeError / NoKernel statuses naming the op.
KTEST(cuda_matmul, errors) {
  require_cuda();
  Buffer buf(kGpu, 4096);
  KCHECK(buf.status().ok()) << buf.status().message();
  if (!buf.status().ok()) return;
  auto v = [&](DType t, std::vector<int64_t> shape, std::vector<int64_t> strides = {}) {
    return dvt::make_view(kGpu, buf, dvt::Layout{t, shape, strides, 0});  // no strides: contiguous
  };
  struct Bad {
    const char* what;
    DType key;
    View a, b, c;
    StatusCode code;
  };
  const DType f32 = DType::Float32, f16 = DType::Float16;
  const Bad bad[] = {
      {"inner dims differ", f32, v(f32, {2, 3}), v(f32, {4, 5}), v(f32, {2, 5}), StatusCode::ShapeError},
      {"dtypes differ", f32, v(f32, {2, 3}), v(f16, {3, 5}), v(f32, {2, 5}), StatusCode::DTypeError},
      {"output dtype differs", f16, v(f16, {2, 3}), v(f16, {3, 5}), v(f32, {2, 5}), StatusCode::DTypeError},
      {"output shape", f32, v(f32, {2, 3}), v(f32, {3, 5}), v(f32, {2, 4}), StatusCode::ShapeError},
      {"ranks differ", f32, v(f32, {2, 2, 3}), v(f32, {3, 5}), v(f32, {2, 2, 5}), StatusCode::ShapeError},
      {"batch differs", f32, v(f32, {2, 2, 3}), v(f32, {3, 3, 5}), v(f32, {2, 2, 5}), StatusCode::ShapeError},
      {"1-D operand", f32, v(f32, {3}), v(f32, {3}), v(f32, {1}), StatusCode::ShapeError},
      {"strided output", f32, v(f32, {2, 3}), v(f32, {3, 5}), v(f32, {2, 5}, {1, 2}), StatusCode::ShapeError},
      {"int32", DType::Int32, v(DType::Int32, {2, 3}), v(DType::Int32, {3, 5}), v(DType::Int32, {2, 5}),
       StatusCode::NoKernel},
  };
  for (const Bad& b : bad) {
    const Status st = kt::run("matmul", b.key, {b.a, b.b}, {b.c});
    KCHECK(st.code() == b.code) << b.what << ": got " << kiln::status_code_name(st.code()) << " " << st.message();
    KCHECK(st.message().find("matmul") != std::string::npos) << b.what << ": " << st.message();
  }
}

}  // namespace
