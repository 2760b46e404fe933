// Native tests for the CUDA comparison and logical kernels (suite
// 'cuda_compare') against the CPU kernels, the reference (suite 'compare'
// checks those against float64): every (op, dtype) runs through run_kernel on
// the CPU and on cuda:0 over identical copies of the same operands
// (contiguous, transposed, strided with offsets, broadcast with stride 0,
// size-1 and empty dims, every 16-bit code, NaN / inf / -0 / subnormal
// specials, bool bytes other than 0 and 1), and the whole output storages --
// including the gaps a strided output skips -- must be the same bytes.
// Refused operands must give cuda the CPU's status code and message, with the
// output untouched.
//
// Without a usable GPU the GPU tests skip with the reason kiln reports; the
// registration test (the CUDA kernels cover exactly the CPU's (op, dtype)
// pairs) needs only a CUDA build. This file uses only kiln's backend-neutral
// headers, so it compiles with or without CUDA.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "harness.h"
#include "kiln/cuda.h"
#include "kiln/dtype.h"
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/storage.h"
#include "kiln/view.h"

namespace {

using kiln::Device;
using kiln::DeviceKind;
using kiln::DType;
using kiln::KernelArgs;
using kiln::Status;
using kiln::StatusCode;
using kiln::View;

const Device kCpu{DeviceKind::CPU, 0};
const Device kGpu{DeviceKind::CUDA, 0};

const char* const kCompareOps[] = {"eq", "ne", "lt", "le", "gt", "ge"};
const DType kCompareDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Int32,
                                DType::Int8,    DType::UInt8,   DType::Bool};

void require_cuda() {
  const kiln::cuda::Availability& a = kiln::cuda::availability();
  if (!a.available) kt::skip("CUDA is unavailable: " + a.reason);
}

std::string dt(DType t) { return kiln::dtype_name(t); }

// ---- storages ------------------------------------------------------------------------

class Buffer {
 public:
  Buffer(Device d, size_t bytes) : dev_(d), bytes_(bytes) { status_ = kiln::storage_alloc(d, bytes, &ptr_); }
  ~Buffer() { kiln::storage_free(dev_, ptr_, bytes_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* ptr() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  const Status& status() const { return status_; }

 private:
  Device dev_;
  size_t bytes_;
  void* ptr_ = nullptr;
  Status status_;
};

// The same bytes in a host storage and in a cuda:0 storage.
struct Twin {
  Buffer cpu, gpu;
  Status status;
  explicit Twin(const std::vector<uint8_t>& init) : cpu(kCpu, init.size()), gpu(kGpu, init.size()) {
    status = cpu.status().ok() ? gpu.status() : cpu.status();
    if (status.ok() && !init.empty()) {
      std::memcpy(cpu.ptr(), init.data(), init.size());
      status = kiln::storage_copy(kGpu, gpu.ptr(), kCpu, init.data(), init.size());
    }
  }
  std::vector<uint8_t> cpu_bytes() const {
    std::vector<uint8_t> v(cpu.bytes());
    if (!v.empty()) std::memcpy(v.data(), cpu.ptr(), v.size());
    return v;
  }
  Status gpu_bytes(std::vector<uint8_t>* out) const {
    out->assign(gpu.bytes(), 0);
    if (out->empty()) return Status::Ok();
    return kiln::storage_copy(kCpu, out->data(), kGpu, gpu.ptr(), gpu.bytes());
  }
};

// ---- views ------------------------------------------------------------------------------

// dtype, shape, element strides (empty: contiguous) and element offset.
struct Layout {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  int64_t offset = 0;
};

std::vector<int64_t> strides_of(const Layout& l) {
  if (!l.strides.empty()) return l.strides;
  std::vector<int64_t> s(l.shape.size());
  int64_t step = 1;
  for (size_t i = l.shape.size(); i-- > 0;) {
    s[i] = step;
    step *= l.shape[i];
  }
  return s;
}

int64_t storage_elems(const Layout& l) {
  int64_t n = 1;
  for (int64_t d : l.shape) n *= d;
  if (n == 0) return 0;
  const std::vector<int64_t> s = strides_of(l);
  int64_t last = l.offset;
  for (size_t i = 0; i < l.shape.size(); ++i) last += (l.shape[i] - 1) * s[i];
  return last + 1;
}

View make_view(Device dev, const Buffer& buf, const Layout& l) {
  View v;
  v.base = buf.ptr();
  v.storage_bytes = buf.bytes();
  v.device = dev;
  v.dtype = l.dtype;
  v.ndim = static_cast<int>(l.shape.size());
  const std::vector<int64_t> s = strides_of(l);
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = l.shape[static_cast<size_t>(i)];
    v.strides[i] = s[static_cast<size_t>(i)];
  }
  v.offset = l.offset;
  return v;
}

std::string layout_str(const Layout& l) {
  std::string s = dt(l.dtype) + "[";
  for (size_t i = 0; i < l.shape.size(); ++i) s += (i ? "," : "") + std::to_string(l.shape[i]);
  s += "]";
  if (!l.strides.empty()) {
    s += " strides [";
    for (size_t i = 0; i < l.strides.size(); ++i) s += (i ? "," : "") + std::to_string(l.strides[i]);
    s += "]";
  }
  if (l.offset) s += " offset " + std::to_string(l.offset);
  return s;
}

// ---- element data ---------------------------------------------------------------------------

// A storage image of n elements of dtype t: half from a pool of specials (equal
// values, -0 / +0, NaNs of both signs and several payloads, inf, subnormals,
// extremes), half arbitrary bit patterns; bool: 0, 1 and other nonzero bytes.
std::vector<uint8_t> random_image(DType t, int64_t n, std::mt19937_64& rng) {
  static const uint32_t kF32[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
                                  0x7FA00001u, 0x3F800000u, 0xBF800000u, 0x3F800001u, 0x00000001u, 0x807FFFFFu,
                                  0x7F7FFFFFu, 0x00800000u};
  static const uint16_t kF16[] = {0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x0001, 0x83FF, 0x7BFF, 0x3C00, 0x3C01, 0x0400};
  static const uint16_t kBF16[] = {0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x0001, 0x807F, 0x7F7F, 0x3F80, 0x3F81, 0x0080};
  static const uint32_t kI32[] = {0u, 1u, 0xFFFFFFFFu, 0x7FFFFFFFu, 0x80000000u, 0x80000001u, 2u};
  static const uint8_t kI8[] = {0, 1, 0x7F, 0x80, 0xFF, 0x81, 2};
  const size_t es = kiln::dtype_size(t);
  std::vector<uint8_t> img(static_cast<size_t>(n) * es);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t x = rng();
    const bool pool = (x >> 60) < 8;
    uint64_t bits = 0;
    switch (t) {
      case DType::Float32: bits = pool ? kF32[x % 14] : static_cast<uint32_t>(x); break;
      case DType::Float16: bits = pool ? kF16[x % 12] : static_cast<uint16_t>(x); break;
      case DType::BFloat16: bits = pool ? kBF16[x % 12] : static_cast<uint16_t>(x); break;
      case DType::Int32: bits = pool ? kI32[x % 7] : static_cast<uint32_t>(x); break;
      case DType::Bool: {
        const uint64_t k = x % 10;
        bits = k < 4 ? 0 : (k < 8 ? 1 : (k == 8 ? 2 : 0xFF));
        break;
      }
      default: bits = pool ? kI8[x % 7] : (x & 0xFF); break;
    }
    std::memcpy(img.data() + static_cast<size_t>(i) * es, &bits, es);
  }
  return img;
}

struct Operand {
  Layout layout;
  std::vector<uint8_t> init;  // the whole storage image
};

Operand input(const Layout& l, std::mt19937_64& rng) { return Operand{l, random_image(l.dtype, storage_elems(l), rng)}; }
Operand output(const Layout& l) {
  return Operand{l, std::vector<uint8_t>(static_cast<size_t>(storage_elems(l)) * kiln::dtype_size(l.dtype), 0xA5)};
}

struct Outcome {
  Status cpu, gpu;
  std::vector<uint8_t> cpu_out, gpu_out;  // the output storage after each run
  bool ran = false;
};

// Runs `op` on the CPU and on cuda:0 over copies of the same operands (one output).
Outcome run_both(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins, const Operand& out) {
  Outcome res;
  std::vector<std::unique_ptr<Twin>> tin;
  for (const Operand& o : ins) tin.emplace_back(new Twin(o.init));
  Twin tout(out.init);
  for (const auto& t : tin) {
    KCHECK(t->status.ok()) << what << ": " << t->status.message();
    if (!t->status.ok()) return res;
  }
  KCHECK(tout.status.ok()) << what << ": " << tout.status.message();
  if (!tout.status.ok()) return res;
  auto call = [&](bool gpu) {
    const Device dev = gpu ? kGpu : kCpu;
    std::vector<View> vin;
    for (size_t i = 0; i < ins.size(); ++i) vin.push_back(make_view(dev, gpu ? tin[i]->gpu : tin[i]->cpu, ins[i].layout));
    const View vout = make_view(dev, gpu ? tout.gpu : tout.cpu, out.layout);
    KernelArgs args;
    args.op = op;
    args.in = vin.data();
    args.n_in = static_cast<int>(vin.size());
    args.out = &vout;
    args.n_out = 1;
    return kiln::run_kernel(key, args);
  };
  res.cpu = call(false);
  res.gpu = call(true);
  res.cpu_out = tout.cpu_bytes();
  const Status rs = tout.gpu_bytes(&res.gpu_out);
  KCHECK(rs.ok()) << what << ": reading back the output: " << rs.message();
  res.ran = rs.ok();
  return res;
}

// Both succeed and the output storages are the same bytes.
void compare(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins, const Operand& out) {
  const Outcome r = run_both(what, op, key, ins, out);
  if (!r.ran) return;
  KCHECK(r.cpu.ok()) << what << ": cpu: " << r.cpu.message();
  KCHECK(r.gpu.ok()) << what << ": cuda: " << r.gpu.message();
  if (!r.cpu.ok() || !r.gpu.ok()) return;
  size_t diffs = 0, first = 0;
  for (size_t i = 0; i < r.cpu_out.size() && i < r.gpu_out.size(); ++i) {
    if (r.cpu_out[i] != r.gpu_out[i] && diffs++ == 0) first = i;
  }
  KCHECK(r.cpu_out.size() == r.gpu_out.size() && diffs == 0)
      << what << ": output " << layout_str(out.layout) << ": " << diffs << " byte(s) differ, first at " << first
      << ": cpu " << (first < r.cpu_out.size() ? static_cast<int>(r.cpu_out[first]) : -1) << " vs cuda "
      << (first < r.gpu_out.size() ? static_cast<int>(r.gpu_out[first]) : -1);
}

// Both refuse with the same code and message, and neither wrote the output.
void compare_error(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins, const Operand& out,
                   StatusCode want) {
  const Outcome r = run_both(what, op, key, ins, out);
  if (!r.ran) return;
  KCHECK(r.cpu.code() == want) << what << ": cpu " << kiln::status_code_name(r.cpu.code()) << " " << r.cpu.message();
  KCHECK(r.gpu.code() == r.cpu.code()) << what << ": cuda " << kiln::status_code_name(r.gpu.code()) << " vs cpu "
                                       << kiln::status_code_name(r.cpu.code());
  if (want == StatusCode::NoKernel) {  // the message names the device
    std::string cpu_msg = r.cpu.message();
    const std::string tail = "on device cpu";
    if (cpu_msg.size() >= tail.size() && cpu_msg.compare(cpu_msg.size() - tail.size(), tail.size(), tail) == 0) {
      cpu_msg.replace(cpu_msg.size() - tail.size(), tail.size(), "on device cuda");
    }
    KCHECK_EQ(r.gpu.message(), cpu_msg) << what;
  } else {
    KCHECK_EQ(r.gpu.message(), r.cpu.message()) << what;
  }
  KCHECK(r.cpu_out == out.init) << what << ": the cpu wrote the output before failing";
  KCHECK(r.gpu_out == out.init) << what << ": cuda wrote the output before failing";
}

// ---- cases --------------------------------------------------------------------------------

struct Case {
  const char* name;
  Layout a, b, out;  // dtypes set per run (out: bool)
};

Layout with(Layout l, DType t) {
  l.dtype = t;
  return l;
}

std::vector<Case> cases() {
  const DType f = DType::Float32;
  return {
      {"contiguous", Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}, Layout{f, {100003}, {}, 0}},
      {"row broadcast", Layout{f, {37, 129}, {}, 0}, Layout{f, {129}, {}, 0}, Layout{f, {37, 129}, {}, 0}},
      {"scalar operand", Layout{f, {}, {}, 2}, Layout{f, {5, 77}, {}, 0}, Layout{f, {5, 77}, {}, 0}},
      {"outer broadcast", Layout{f, {3, 1, 5}, {}, 0}, Layout{f, {4, 1}, {}, 0}, Layout{f, {3, 4, 5}, {}, 0}},
      {"transposed, strided output",
       Layout{f, {33, 40}, {1, 33}, 0}, Layout{f, {33, 40}, {81, 2}, 5}, Layout{f, {33, 40}, {1, 35}, 3}},
      {"expanded (stride 0)", Layout{f, {6, 64}, {0, 1}, 2}, Layout{f, {6, 64}, {1, 0}, 1}, Layout{f, {6, 64}, {}, 0}},
      {"size-1 dims", Layout{f, {1, 7, 1, 3}, {5, 3, 9, 1}, 4}, Layout{f, {1, 1, 3}, {}, 0},
       Layout{f, {1, 7, 1, 3}, {100, 4, 1, 1}, 0}},
      {"scalars", Layout{f, {}, {}, 3}, Layout{f, {}, {}, 0}, Layout{f, {}, {}, 1}},
      {"empty", Layout{f, {3, 0, 2}, {}, 0}, Layout{f, {1, 2}, {}, 0}, Layout{f, {3, 0, 2}, {}, 0}},
  };
}

// =====================================================================================================

KTEST(cuda_compare, same_kernels_as_cpu) {
  if (!kiln::cuda::compiled()) kt::skip("kiln was built without CUDA");
  const std::vector<std::string> names = kiln::registered_kernels();
  const std::set<std::string> have(names.begin(), names.end());
  for (const char* op : {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not"}) {
    int cpu_count = 0;
    for (DType t : kiln::kAllDTypes) {
      const bool cpu = have.count(std::string(op) + "/cpu/" + dt(t)) > 0;
      const bool gpu = have.count(std::string(op) + "/cuda/" + dt(t)) > 0;
      cpu_count += cpu ? 1 : 0;
      KCHECK(cpu == gpu) << op << " " << dt(t) << ": cpu kernel " << cpu << ", cuda kernel " << gpu;
    }
    KCHECK(cpu_count > 0) << op << " has no CPU kernel at all";
  }
}

KTEST(cuda_compare, comparisons_match_cpu) {
  require_cuda();
  std::mt19937_64 rng(11);
  for (const Case& c : cases()) {
    for (DType t : kCompareDTypes) {
      for (const char* op : kCompareOps) {
        const std::string what = std::string(op) + " " + dt(t) + " " + c.name;
        compare(what, op, t, {input(with(c.a, t), rng), input(with(c.b, t), rng)}, output(with(c.out, DType::Bool)));
        if (kt::failures_in_test() > 20) return;
      }
    }
  }
}

KTEST(cuda_compare, logical_ops_match_cpu) {
  require_cuda();
  std::mt19937_64 rng(12);
  for (const Case& c : cases()) {
    for (const char* op : {"logical_and", "logical_or"}) {
      const std::string what = std::string(op) + " " + c.name;
      compare(what, op, DType::Bool, {input(with(c.a, DType::Bool), rng), input(with(c.b, DType::Bool), rng)},
              output(with(c.out, DType::Bool)));
    }
    // logical_not: the output's shape (a's layout when it matches, else contiguous)
    Layout x = with(c.out, DType::Bool);
    x.strides.clear();
    x.offset = 1;
    const std::string what = std::string("logical_not ") + c.name;
    compare(what, "logical_not", DType::Bool, {input(x, rng)}, output(with(c.out, DType::Bool)));
    Layout xt = with(c.a, DType::Bool);
    compare(what + " (a's layout)", "logical_not", DType::Bool, {input(xt, rng)},
            output(Layout{DType::Bool, c.a.shape, {}, 0}));
  }
}

// Every 16-bit code against a column of codes (specials and random ones), every op.
KTEST(cuda_compare, every_16bit_code) {
  require_cuda();
  std::mt19937_64 rng(13);
  for (DType t : {DType::Float16, DType::BFloat16}) {
    Operand all{Layout{t, {65536}, {}, 0}, std::vector<uint8_t>(65536 * 2)};
    for (uint32_t i = 0; i < 65536; ++i) {
      const uint16_t h = static_cast<uint16_t>(i);
      std::memcpy(all.init.data() + 2 * i, &h, 2);
    }
    std::vector<uint16_t> col = {0x0000, 0x8000, 0x0001, 0x8001, 0x3C00, 0xBC00, 0x3F80, 0xBF80, 0x7BFF, 0xFBFF,
                                 0x7F7F, 0xFF7F, 0x7C00, 0xFC00, 0x7F80, 0xFF80, 0x7E00, 0x7FC0, 0xFFFF, 0x7C01};
    for (int i = 0; i < 12; ++i) col.push_back(static_cast<uint16_t>(rng()));
    const int64_t m = static_cast<int64_t>(col.size());
    Operand other{Layout{t, {m, 1}, {}, 0}, std::vector<uint8_t>(col.size() * 2)};
    std::memcpy(other.init.data(), col.data(), col.size() * 2);
    for (const char* op : kCompareOps) {
      compare(std::string(op) + " " + dt(t) + " every code", op, t, {other, all}, output(Layout{DType::Bool, {m, 65536}, {}, 0}));
      compare(std::string(op) + " " + dt(t) + " every code, swapped", op, t, {all, other},
              output(Layout{DType::Bool, {m, 65536}, {}, 0}));
    }
  }
}

KTEST(cuda_compare, errors_match_cpu) {
  require_cuda();
  std::mt19937_64 rng(14);
  const Layout f{DType::Float32, {3, 4}, {}, 0};
  compare_error("dtypes differ", "lt", DType::Float32, {input(f, rng), input(with(f, DType::Float16), rng)},
                output(with(f, DType::Bool)), StatusCode::DTypeError);
  compare_error("output not bool", "eq", DType::Float32, {input(f, rng), input(f, rng)}, output(f), StatusCode::DTypeError);
  compare_error("shapes", "ge", DType::Float32, {input(f, rng), input(Layout{DType::Float32, {3, 5}, {}, 0}, rng)},
                output(with(f, DType::Bool)), StatusCode::ShapeError);
  compare_error("output shape", "ne", DType::Int32, {input(with(f, DType::Int32), rng), input(with(f, DType::Int32), rng)},
                output(Layout{DType::Bool, {2, 3, 4}, {}, 0}), StatusCode::ShapeError);
  compare_error("float8", "eq", DType::Float8E4M3, {input(with(f, DType::Float8E4M3), rng), input(with(f, DType::Float8E4M3), rng)},
                output(with(f, DType::Bool)), StatusCode::NoKernel);
  compare_error("logical_and of float32", "logical_and", DType::Float32, {input(f, rng), input(f, rng)},
                output(with(f, DType::Bool)), StatusCode::NoKernel);
  compare_error("logical_not to float32", "logical_not", DType::Bool, {input(with(f, DType::Bool), rng)}, output(f),
                StatusCode::DTypeError);
  compare_error("logical_not shape", "logical_not", DType::Bool, {input(with(f, DType::Bool), rng)},
                output(Layout{DType::Bool, {4, 3}, {}, 0}), StatusCode::ShapeError);
}

}  // namespace
