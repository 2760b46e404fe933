// CPU kernel 'matmul' (native/KERNELS.md "Matmul"): C[..., M, N] = A[..., M, K] @ B[..., K, N]
// for float32, float16 and bfloat16, any input strides, float32 accumulation.
//
// The driver (this file) follows BLIS / GotoBLAS: for each NC-column panel of B
// and KC-deep block of K, B is packed into NR-column slivers; for each MC-row
// block of A, A is packed into MR-row slivers; a register-tiled micro-kernel
// (gemm_impl.inc, one per ISA level) multiplies one A sliver by one B sliver.
// Packing handles any strides and widens float16/bfloat16 to float32 exactly.
// Skinny products are bound by reading B once, and take other paths:
//   - stream (at most 4 rows, B float32 with unit column stride: a decode step's
//     GEMV): A packed once; B's rows read in order, four at a time, into C rows
//     held in L1;
//   - strip (at most 4 MR-slivers of rows): A packed once; B walked in groups of
//     NR-column strips per K block, read straight from memory by the
//     micro-kernel when it is float32 with unit column stride, else packed per strip.
// Every path computes each C element with the same operations in the same order.
//
// Threads split the output only: each task owns a rectangle of C (rows x
// columns, in whole MR / NR slivers) of one batch entry and runs the whole K
// loop for it, packing what it needs itself. Every C element is accumulated in
// one fixed order (k = 0, 1, ..., K-1; see gemm.h), so results do not depend on
// the thread count, the tiling or the blocking. Batch entries are tasks too, so
// many small matrices spread over the threads.
//
// Operands are validated by check_matmul_args (kiln/matmul.h, shared with the
// CUDA kernel): one float dtype, equal ranks and batch shapes, a contiguous C.
// A float32 C is accumulated in place; for float16 / bfloat16 a task
// accumulates into a float32 workspace and rounds once into C when its K loop
// is done.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "elementwise_table.h"
#include "gemm.h"
#include "kiln/matmul.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"

namespace kiln {
namespace cpu {
namespace {

constexpr DType kGemmDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16};

// Strip path for tasks with at most this many MR slivers of rows.
constexpr int64_t kStripMaxSlivers = 4;
// Strip path: NR-column strips walked together through each K block, so that
// B's rows are read in runs of this many strips.
constexpr int64_t kStripGroup = 8;
// Columns of C (times rows) a stream-path chunk keeps in L1.
constexpr int64_t kStreamChunkFloats = 4096;

struct Blocking {
  int64_t kc = 0, mc = 0, nc = 0;
};
Blocking& blocking_override() {
  static Blocking b;
  return b;
}
// Float32 workspace a task may use for a non-direct output (floats).
constexpr int64_t kWorkspaceFloats = int64_t(1) << 20;
// Below this many flops per thread, fewer threads are used.
constexpr double kMinFlopsPerThread = 2.0e6;

// ---- per-thread buffers ---------------------------------------------------------

struct Buffer {
  float* p = nullptr;
  size_t floats = 0;
  ~Buffer() { std::free(p); }
  float* get(size_t n) {
    if (n > floats) {
      std::free(p);
      p = nullptr;
      floats = 0;
      const size_t bytes = ((n * sizeof(float) + 4095) / 4096) * 4096;
      void* q = nullptr;
      const size_t align = bytes >= (size_t(4) << 20) ? (size_t(2) << 20) : 4096;
      if (posix_memalign(&q, align, bytes) != 0) return nullptr;
#ifdef MADV_HUGEPAGE
      if (align > 4096) madvise(q, bytes, MADV_HUGEPAGE);
#endif
      p = static_cast<float*>(q);
      floats = bytes / sizeof(float);
    }
    return p;
  }
};

struct ThreadBuffers {
  Buffer a, b, w;
};

ThreadBuffers& thread_buffers() {
  static thread_local ThreadBuffers buffers;
  return buffers;
}

// ---- the problem ----------------------------------------------------------------

struct Problem {
  DType dt = DType::Float32;
  int64_t esz = 4;
  int64_t M = 0, N = 0, K = 0;
  int64_t sam = 0, sak = 0, sbk = 0, sbn = 0, scm = 0, scn = 0;  // element strides
  bool c_direct = false;  // C is float32 with unit column stride: accumulate in place
  bool b_direct = false;  // B is float32 with unit column stride: the strip path may read it unpacked
  // batch: nb entries over the leading dims, with each operand's element strides
  int nbd = 0;
  int64_t nb = 1;
  int64_t bshape[kMaxDims] = {};
  int64_t abs[kMaxDims] = {}, bbs[kMaxDims] = {}, cbs[kMaxDims] = {};
  const char* a = nullptr;
  const char* b = nullptr;
  char* c = nullptr;
};

// One task: rows [m0, m1) and columns [n0, n1) of batch entry `batch`.
struct Tile {
  const char* a;
  const char* b;
  char* c;
  int64_t m0, m1, n0, n1;
};

// The block size for `total` items split into blocks of at most `limit`, as
// even as whole units of `unit` allow (no small remainder block).
int64_t balanced_block(int64_t total, int64_t limit, int64_t unit) {
  const int64_t units = (total + unit - 1) / unit;
  const int64_t limit_units = std::max<int64_t>(1, limit / unit);
  const int64_t blocks = (units + limit_units - 1) / limit_units;
  return (units + blocks - 1) / blocks * unit;
}

// Rounds the float32 rows w (rows x cols, leading dimension ldw) into C at
// (row0, col0) with C's dtype and strides.
void write_back(const Problem& p, const Tile& t, const float* w, int64_t ldw, int64_t row0, int64_t rows, int64_t col0,
                int64_t cols) {
  const CastRunFn cast = elementwise_table().cast[static_cast<int>(DType::Float32)][static_cast<int>(p.dt)];
  for (int64_t i = 0; i < rows; ++i) {
    char* dst = t.c + ((row0 + i) * p.scm + col0 * p.scn) * p.esz;
    cast(reinterpret_cast<const char*>(w + i * ldw), 1, dst, p.scn, cols);
  }
}

void zero_tile(const Problem& p, const Tile& t) {
  for (int64_t i = t.m0; i < t.m1; ++i) {
    for (int64_t j = t.n0; j < t.n1; ++j) std::memset(t.c + (i * p.scm + j * p.scn) * p.esz, 0, p.esz);
  }
}

// Few rows: A packed once (all of K); B walked NR columns at a time.
bool run_strip(const GemmKernels& g, const Problem& p, const Tile& t) {
  ThreadBuffers& buf = thread_buffers();
  const int64_t MR = g.mr, NR = g.nr;
  const int64_t rows = t.m1 - t.m0;
  const int64_t mp = (rows + MR - 1) / MR * MR;
  const int64_t group = kStripGroup * NR;  // columns whose K blocks are walked together
  float* ap = buf.a.get(static_cast<size_t>(mp * p.K + kGemmPackSlack));
  const int64_t kc_max = balanced_block(p.K, g.kc, 1);
  float* bp = buf.b.get(static_cast<size_t>(kc_max * NR + kGemmPackSlack));
  float* w = p.c_direct ? nullptr : buf.w.get(static_cast<size_t>(mp * group));
  if (ap == nullptr || bp == nullptr || (!p.c_direct && w == nullptr)) return false;
  for (int64_t pc = 0; pc < p.K; pc += kc_max) {
    const int64_t kc = std::min(kc_max, p.K - pc);
    g.pack_a(t.a + (t.m0 * p.sam + pc * p.sak) * p.esz, p.dt, p.sam, p.sak, rows, kc, ap + pc * mp);
  }
  for (int64_t jg = t.n0; jg < t.n1; jg += group) {
    const int64_t gcols = std::min(group, t.n1 - jg);
    float* cg = p.c_direct ? reinterpret_cast<float*>(t.c) + t.m0 * p.scm + jg : w;
    const int64_t ldc = p.c_direct ? p.scm : group;
    for (int64_t pc = 0; pc < p.K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, p.K - pc);
      const int flags = pc > 0 ? kGemmAccumulate : 0;
      for (int64_t js = 0; js < gcols; js += NR) {
        const int n = static_cast<int>(std::min(NR, gcols - js));
        const bool direct = p.b_direct && n == NR;
        const char* bsrc = t.b + (pc * p.sbk + (jg + js) * p.sbn) * p.esz;
        const float* b = bp;
        int64_t ldb = NR;
        if (direct) {
          b = reinterpret_cast<const float*>(bsrc);
          ldb = p.sbk;
        } else {
          g.pack_b(bsrc, p.dt, p.sbn, p.sbk, n, kc, bp);
        }
        const GemmUKernel* uk = direct ? g.ukernel_direct : g.ukernel;
        for (int64_t i0 = 0; i0 < rows; i0 += MR) {
          const int r = static_cast<int>(std::min(MR, rows - i0));
          uk[r](kc, ap + pc * mp + i0 * kc, b, ldb, cg + i0 * ldc + js, ldc, n, flags);
        }
      }
    }
    if (!p.c_direct) write_back(p, t, w, group, t.m0, rows, jg, gcols);
  }
  return true;
}

// At most kGemmStreamMaxRows rows and B float32 with unit column stride: A's
// rows packed once, B streamed row by row over column chunks whose C rows stay in L1.
bool run_stream(const GemmKernels& g, const Problem& p, const Tile& t) {
  ThreadBuffers& buf = thread_buffers();
  const int64_t rows = t.m1 - t.m0;
  const int64_t chunk = std::max<int64_t>(64, kStreamChunkFloats / rows / 64 * 64);
  const int64_t mp = (rows + g.mr - 1) / g.mr * g.mr;
  float* ap = buf.a.get(static_cast<size_t>(mp * p.K + kGemmPackSlack));
  float* w = p.c_direct ? nullptr : buf.w.get(static_cast<size_t>(rows * chunk));
  if (ap == nullptr || (!p.c_direct && w == nullptr)) return false;
  g.pack_a(t.a + t.m0 * p.sam * p.esz, p.dt, p.sam, p.sak, rows, p.K, ap);
  for (int64_t j0 = t.n0; j0 < t.n1; j0 += chunk) {
    const int64_t n = std::min(chunk, t.n1 - j0);
    const float* b = reinterpret_cast<const float*>(t.b) + j0;
    float* c = p.c_direct ? reinterpret_cast<float*>(t.c) + t.m0 * p.scm + j0 : w;
    const int64_t ldc = p.c_direct ? p.scm : chunk;
    g.stream[rows](p.K, ap, b, p.sbk, c, ldc, n, 0);
    if (!p.c_direct) write_back(p, t, w, chunk, t.m0, rows, j0, n);
  }
  return true;
}

// BLIS loop nest over one tile.
bool run_blocked(const GemmKernels& g, const Problem& p, const Tile& t) {
  ThreadBuffers& buf = thread_buffers();
  const int64_t MR = g.mr, NR = g.nr;
  const int64_t rows = t.m1 - t.m0, cols = t.n1 - t.n0;
  const int64_t kc_max = balanced_block(p.K, g.kc, 1);
  const int64_t mc_max = balanced_block(rows, g.mc, MR);
  // Without a direct output, the workspace holds all rows of the tile for one column panel.
  const int64_t nc_limit = p.c_direct ? g.nc : std::min(g.nc, std::max(NR, kWorkspaceFloats / rows / NR * NR));
  const int64_t nc_max = balanced_block(cols, nc_limit, NR);
  float* ap = buf.a.get(static_cast<size_t>(mc_max * kc_max + kGemmPackSlack));
  float* bp = buf.b.get(static_cast<size_t>(kc_max * nc_max + kGemmPackSlack));
  float* w = p.c_direct ? nullptr : buf.w.get(static_cast<size_t>(rows * nc_max));
  if (ap == nullptr || bp == nullptr || (!p.c_direct && w == nullptr)) return false;
  for (int64_t jc = t.n0; jc < t.n1; jc += nc_max) {
    const int64_t nc = std::min(nc_max, t.n1 - jc);
    float* cbase = p.c_direct ? reinterpret_cast<float*>(t.c) + t.m0 * p.scm + jc : w;
    const int64_t ldc = p.c_direct ? p.scm : nc_max;
    for (int64_t pc = 0; pc < p.K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, p.K - pc);
      const int flags = pc > 0 ? kGemmAccumulate : 0;
      g.pack_b(t.b + (pc * p.sbk + jc * p.sbn) * p.esz, p.dt, p.sbn, p.sbk, nc, kc, bp);
      for (int64_t ic = 0; ic < rows; ic += mc_max) {
        const int64_t mc = std::min(mc_max, rows - ic);
        g.pack_a(t.a + ((t.m0 + ic) * p.sam + pc * p.sak) * p.esz, p.dt, p.sam, p.sak, mc, kc, ap);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int n = static_cast<int>(std::min(NR, nc - jr));
          const float* b = bp + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int r = static_cast<int>(std::min(MR, mc - ir));
            g.ukernel[r](kc, ap + ir * kc, b, NR, cbase + (ic + ir) * ldc + jr, ldc, n, flags);
          }
        }
      }
    }
    if (!p.c_direct) write_back(p, t, w, nc_max, t.m0, rows, jc, nc);
  }
  return true;
}

bool run_tile(const GemmKernels& g, const Problem& p, const Tile& t) {
  if (t.m0 >= t.m1 || t.n0 >= t.n1) return true;
  if (p.K == 0) {
    zero_tile(p, t);
    return true;
  }
  if (p.b_direct && t.m1 - t.m0 <= kGemmStreamMaxRows) return run_stream(g, p, t);
  if ((t.m1 - t.m0 + g.mr - 1) / g.mr <= kStripMaxSlivers) return run_strip(g, p, t);
  return run_blocked(g, p, t);
}

// Splits `tiles` tasks of one matrix into a tm x tn grid of sliver ranges:
// as many tasks as the slivers allow, then the least duplicated packing
// (splitting N makes every task pack all of A's rows, splitting M all of B's columns).
void choose_grid(int64_t tiles, int64_t m_slivers, int64_t n_slivers, int64_t M, int64_t N, int64_t* tm, int64_t* tn) {
  int64_t best_m = 1, best_n = 1, best_used = 0;
  double best_cost = 0;
  for (int64_t n_parts = 1; n_parts <= tiles; ++n_parts) {
    const int64_t m_parts = tiles / n_parts;
    const int64_t um = std::min(m_parts, m_slivers), un = std::min(n_parts, n_slivers);
    const int64_t used = um * un;
    const double cost = static_cast<double>(un) * static_cast<double>(M) + static_cast<double>(um) * static_cast<double>(N);
    if (used > best_used || (used == best_used && cost < best_cost)) {
      best_used = used;
      best_cost = cost;
      best_m = um;
      best_n = un;
    }
  }
  *tm = best_m;
  *tn = best_n;
}

int64_t gcd64(int64_t a, int64_t b) {
  while (b != 0) {
    const int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}


Status matmul_kernel(const KernelArgs& args) {
  // Counts, dtypes, ranks, shapes and a contiguous output (kiln/matmul.h, shared with CUDA).
  KILN_RETURN_IF_ERROR(check_matmul_args(args));
  const View &A = args.in[0], &B = args.in[1], &C = args.out[0];
  const int nd = A.ndim;
  const int64_t M = A.shape[nd - 2], K = A.shape[nd - 1], N = B.shape[nd - 1];
  if (C.numel() == 0) return Status::Ok();

  Problem p;
  p.dt = A.dtype;
  p.esz = static_cast<int64_t>(dtype_size(p.dt));
  p.M = M;
  p.N = N;
  p.K = K;
  p.sam = A.strides[nd - 2];
  p.sak = A.strides[nd - 1];
  p.sbk = B.strides[nd - 2];
  p.sbn = B.strides[nd - 1];
  p.scm = C.strides[nd - 2];
  p.scn = C.strides[nd - 1];
  p.c_direct = p.dt == DType::Float32 && (p.scn == 1 || N == 1);
  if (p.c_direct && M == 1) p.scm = 0;  // only row 0 is addressed
  p.b_direct = p.dt == DType::Float32 && (p.sbn == 1 || N == 1);
  if (p.c_direct) p.scn = 1;
  if (p.b_direct) p.sbn = 1;
  p.a = A.data();
  p.b = B.data();
  p.c = C.data();
  for (int d = 0; d < nd - 2; ++d) {
    if (A.shape[d] == 1) continue;
    p.bshape[p.nbd] = A.shape[d];
    p.abs[p.nbd] = A.strides[d];
    p.bbs[p.nbd] = B.strides[d];
    p.cbs[p.nbd] = C.strides[d];
    p.nb *= A.shape[d];
    ++p.nbd;
  }

  GemmKernels g = gemm_kernels();
  {
    const Blocking& o = blocking_override();
    if (o.kc > 0) g.kc = o.kc;
    if (o.mc > 0) g.mc = (o.mc + g.mr - 1) / g.mr * g.mr;
    if (o.nc > 0) g.nc = (o.nc + g.nr - 1) / g.nr * g.nr;
  }
  const int64_t m_slivers = (M + g.mr - 1) / g.mr, n_slivers = (N + g.nr - 1) / g.nr;
  const int64_t threads = std::max(1, num_threads());
  // Tiles per matrix: enough that nb * tiles splits evenly over the threads.
  const int64_t tiles = p.nb >= 8 * threads ? 1 : threads / gcd64(p.nb, threads);
  int64_t tm = 1, tn = 1;
  choose_grid(tiles, m_slivers, n_slivers, M, N, &tm, &tn);
  const int64_t tasks = p.nb * tm * tn;
  const double flops_per_task = 2.0 * static_cast<double>(M) * static_cast<double>(N) *
                                static_cast<double>(std::max<int64_t>(K, 1)) / static_cast<double>(tm * tn);
  const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>(kMinFlopsPerThread / flops_per_task));

  std::atomic<bool> ok{true};  // false when a buffer could not be allocated
  parallel_for(tasks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t batch = task / (tm * tn), tile = task % (tm * tn);
      const int64_t im = tile / tn, in = tile % tn;
      int64_t ao = 0, bo = 0, co = 0, rem = batch;
      for (int d = p.nbd - 1; d >= 0; --d) {
        const int64_t idx = rem % p.bshape[d];
        rem /= p.bshape[d];
        ao += idx * p.abs[d];
        bo += idx * p.bbs[d];
        co += idx * p.cbs[d];
      }
      Tile t;
      t.a = p.a + ao * p.esz;
      t.b = p.b + bo * p.esz;
      t.c = p.c + co * p.esz;
      t.m0 = std::min(M, m_slivers * im / tm * g.mr);
      t.m1 = std::min(M, m_slivers * (im + 1) / tm * g.mr);
      t.n0 = std::min(N, n_slivers * in / tn * g.nr);
      t.n1 = std::min(N, n_slivers * (in + 1) / tn * g.nr);
      if (!run_tile(g, p, t)) ok.store(false);
    }
  });
  if (!ok.load()) {
    return Status(StatusCode::OutOfMemory, std::string("kiln: ") + args.op + ": could not allocate packing buffers (" +
                                               A.describe() + " @ " + B.describe() + ")");
  }
  return Status::Ok();
}

KILN_REGISTER_KERNELS("matmul", DeviceKind::CPU, kGemmDTypes, matmul_kernel);

}  // namespace

void gemm_set_blocking_for_testing(int64_t kc, int64_t mc, int64_t nc) {
  Blocking& b = blocking_override();
  b.kc = kc;
  b.mc = mc;
  b.nc = nc;
}
}  // namespace cpu
}  // namespace kiln
