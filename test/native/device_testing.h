// Storages on the CPU and on cuda:0 for the CUDA suites ('cuda', 'cuda_ops',
// 'cuda_matmul', 'cuda_nn'): buffers that free themselves, twins (the same
// bytes on both devices), views over whole storage images (dtype, shape,
// element strides, offset), random storage images with special values, and
// running one kernel on both backends over copies of the same operands to
// compare the output storages byte for byte (gaps a strided view skips
// included). Only kiln's backend-neutral headers: it compiles with or
// without CUDA, and the tests skip (require_cuda) without a usable GPU.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "harness.h"
#include "kernel_calls.h"
#include "kiln/cuda.h"
#include "kiln/dtype.h"
#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/storage.h"
#include "kiln/view.h"

namespace dvt {

using kiln::Device;
using kiln::DType;
using kiln::Status;
using kiln::View;

const Device kCpu{kiln::DeviceKind::CPU, 0};
const Device kGpu{kiln::DeviceKind::CUDA, 0};

// Skips the running test, with the reason kiln reports, when CUDA is unavailable.
inline void require_cuda() {
  const kiln::cuda::Availability& a = kiln::cuda::availability();
  if (!a.available) kt::skip("CUDA is unavailable: " + a.reason);
}

inline std::string code_name(const Status& s) { return kiln::status_code_name(s.code()); }

inline std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// ---- storages ------------------------------------------------------------------------

// A storage that frees itself.
class Buffer {
 public:
  Buffer(Device d, size_t bytes) : dev_(d), bytes_(bytes) { status_ = kiln::storage_alloc(d, bytes, &ptr_); }
  ~Buffer() { kiln::storage_free(dev_, ptr_, bytes_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* ptr() const { return ptr_; }
  char* bytes_ptr() const { return static_cast<char*>(ptr_); }
  size_t bytes() const { return bytes_; }
  const Status& status() const { return status_; }

 private:
  Device dev_;
  size_t bytes_;
  void* ptr_ = nullptr;
  Status status_;
};

// The same bytes in a host storage and in a cuda:0 storage.
class Twin {
 public:
  explicit Twin(const std::vector<uint8_t>& init) : init_(init), cpu_(kCpu, init.size()), gpu_(kGpu, init.size()) {
    status_ = cpu_.status().ok() ? gpu_.status() : cpu_.status();
    if (status_.ok() && !init.empty()) {
      std::memcpy(cpu_.ptr(), init.data(), init.size());
      status_ = reset_gpu();
    }
  }
  const Status& status() const { return status_; }
  const Buffer& cpu() const { return cpu_; }
  const Buffer& gpu() const { return gpu_; }
  // Copies the initial bytes to the cuda:0 storage again.
  Status reset_gpu() const {
    if (init_.empty()) return Status::Ok();
    return kiln::storage_copy(kGpu, gpu_.ptr(), kCpu, init_.data(), init_.size());
  }
  std::vector<uint8_t> cpu_bytes() const {
    std::vector<uint8_t> v(cpu_.bytes());
    if (!v.empty()) std::memcpy(v.data(), cpu_.ptr(), v.size());
    return v;
  }
  Status gpu_bytes(std::vector<uint8_t>* out) const {
    out->assign(gpu_.bytes(), 0);
    if (out->empty()) return Status::Ok();
    return kiln::storage_copy(kCpu, out->data(), kGpu, gpu_.ptr(), gpu_.bytes());
  }

 private:
  std::vector<uint8_t> init_;
  Buffer cpu_, gpu_;
  Status status_;
};

// ---- views ------------------------------------------------------------------------------

// dtype, shape, element strides (empty: contiguous) and element offset.
struct Layout {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  int64_t offset = 0;
};

inline Layout with_dtype(Layout l, DType t) {
  l.dtype = t;
  return l;
}

inline std::vector<int64_t> strides_of(const Layout& l) {
  if (!l.strides.empty()) return l.strides;
  std::vector<int64_t> s(l.shape.size());
  int64_t step = 1;
  for (size_t i = l.shape.size(); i-- > 0;) {
    s[i] = step;
    step *= l.shape[i];
  }
  return s;
}

inline int64_t numel_of(const Layout& l) {
  int64_t n = 1;
  for (int64_t d : l.shape) n *= d;
  return n;
}

// Elements of storage the view needs (0 when it is empty).
inline int64_t storage_elems(const Layout& l) {
  if (numel_of(l) == 0) return 0;
  const std::vector<int64_t> s = strides_of(l);
  int64_t last = l.offset;
  for (size_t i = 0; i < l.shape.size(); ++i) last += (l.shape[i] - 1) * s[i];
  return last + 1;
}

// Storage element offsets of the view's elements in row-major order.
inline std::vector<int64_t> element_offsets(const Layout& l) {
  const int64_t n = numel_of(l);
  const std::vector<int64_t> s = strides_of(l);
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = i, off = l.offset;
    for (size_t d = l.shape.size(); d-- > 0;) {
      off += (k % l.shape[d]) * s[d];
      k /= l.shape[d];
    }
    out[static_cast<size_t>(i)] = off;
  }
  return out;
}

// The view `l` of storage `buf` on `dev`.
inline View make_view(Device dev, const Buffer& buf, const Layout& l) {
  View v;
  v.base = buf.ptr();
  v.storage_bytes = buf.bytes();
  v.device = dev;
  v.dtype = l.dtype;
  v.ndim = static_cast<int>(l.shape.size());
  const std::vector<int64_t> s = strides_of(l);
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = l.shape[i];
    v.strides[i] = s[i];
  }
  v.offset = l.offset;
  return v;
}

inline std::string layout_str(const Layout& l) {
  std::string s = std::string(kiln::dtype_name(l.dtype)) + "[";
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

// ---- storage images -------------------------------------------------------------------------

inline uint64_t load_bits(const uint8_t* p, size_t size) {
  uint64_t v = 0;
  std::memcpy(&v, p, size);  // little-endian hosts only (x86-64, aarch64)
  return v;
}

inline void put(std::vector<uint8_t>* img, size_t elem, size_t size, uint64_t bits) {
  std::memcpy(img->data() + elem * size, &bits, size);
}

inline bool is_nan_code(DType t, uint64_t bits) {
  switch (t) {
    case DType::Float32: return (bits & 0x7FFFFFFFu) > 0x7F800000u;
    case DType::Float16: return (bits & 0x7FFFu) > 0x7C00u;
    case DType::BFloat16: return (bits & 0x7FFFu) > 0x7F80u;
    case DType::Float8E4M3: return (bits & 0x7Fu) == 0x7Fu;
    case DType::Float8E5M2: return (bits & 0x7Fu) > 0x7Cu;
    default: return false;
  }
}

// "" when the two storage images hold the same elements, else where and how
// they first differ. With nan_equal, any two NaN codes count as equal (sign
// and payload of a NaN made by arithmetic differ between x86 and NVIDIA GPUs).
inline std::string first_difference(const std::vector<uint8_t>& ref, const std::vector<uint8_t>& got, DType t,
                                    bool nan_equal) {
  if (ref.size() != got.size()) {
    return "sizes differ: " + std::to_string(ref.size()) + " vs " + std::to_string(got.size()) + " bytes";
  }
  const size_t es = kiln::dtype_size(t);
  size_t diffs = 0, first = 0;
  uint64_t first_ref = 0, first_got = 0;
  for (size_t i = 0; i + es <= ref.size(); i += es) {
    if (std::memcmp(&ref[i], &got[i], es) == 0) continue;
    const uint64_t r = load_bits(&ref[i], es), g = load_bits(&got[i], es);
    if (nan_equal && is_nan_code(t, r) && is_nan_code(t, g)) continue;
    if (diffs++ == 0) {
      first = i / es;
      first_ref = r;
      first_got = g;
    }
  }
  if (diffs == 0) return "";
  return std::to_string(diffs) + " element(s) differ; first at storage element " + std::to_string(first) + ": cpu " +
         hex(first_ref) + " vs cuda " + hex(first_got);
}

// A storage image of n elements of dtype t: ordinary values, arbitrary bit
// patterns and special values (zeros, infinities, NaNs with payloads, extremes,
// subnormals).
inline std::vector<uint8_t> random_image(DType t, int64_t n, std::mt19937_64& rng) {
  const size_t es = kiln::dtype_size(t);
  std::vector<uint8_t> img(static_cast<size_t>(n) * es);
  static const uint32_t kF32Special[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u,
                                         0xFFC00000u, 0x7FA00001u, 0x00000001u, 0x807FFFFFu, 0x7F7FFFFFu,
                                         0x3F800000u, 0xBF800000u, 0x00800000u, 0x4B000001u};
  static const uint16_t kF16Special[] = {0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x0001, 0x83FF, 0x7BFF, 0x3C00, 0x0400};
  static const uint16_t kBF16Special[] = {0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x0001, 0x807F, 0x7F7F, 0x3F80, 0x0080};
  static const uint32_t kI32Special[] = {0u, 1u, 0xFFFFFFFFu, 0x7FFFFFFFu, 0x80000000u, 0x80000001u, 0x01000001u, 0xFEFFFFFFu};
  for (int64_t i = 0; i < n; ++i) {
    const unsigned kind = static_cast<unsigned>(rng() % 10);  // 0: special, 1-2: any bits, 3-9: ordinary
    const uint64_t x = rng();
    uint64_t bits = 0;
    switch (t) {
      case DType::Float32:
        if (kind == 0) bits = kF32Special[x % (sizeof(kF32Special) / 4)];
        else if (kind <= 2) bits = static_cast<uint32_t>(x);
        else bits = (x & 0x807FFFFFu) | (static_cast<uint32_t>(117 + (x >> 32) % 21) << 23);  // |v| in [2^-10, 2^11)
        break;
      case DType::Float16:
        if (kind == 0) bits = kF16Special[x % (sizeof(kF16Special) / 2)];
        else if (kind <= 2) bits = static_cast<uint16_t>(x);
        else bits = (x & 0x83FFu) | (static_cast<uint32_t>(5 + (x >> 32) % 21) << 10);  // |v| in [2^-10, 2^11)
        break;
      case DType::BFloat16:
        if (kind == 0) bits = kBF16Special[x % (sizeof(kBF16Special) / 2)];
        else if (kind <= 2) bits = static_cast<uint16_t>(x);
        else bits = (x & 0x807Fu) | (static_cast<uint32_t>(117 + (x >> 32) % 21) << 7);
        break;
      case DType::Int32:
        if (kind == 0) bits = kI32Special[x % (sizeof(kI32Special) / 4)];
        else if (kind <= 4) bits = static_cast<uint32_t>(x);
        else bits = static_cast<uint32_t>(static_cast<int32_t>(x % 2001) - 1000);
        break;
      default:
        bits = x & 0xFF;
        break;
    }
    put(&img, static_cast<size_t>(i), es, bits);
  }
  return img;
}

// ---- running one op on both backends ------------------------------------------------------------

struct Operand {
  Layout layout;
  std::vector<uint8_t> init;  // the whole storage image (storage_elems(layout) elements)
};

inline Operand operand(const Layout& l, std::mt19937_64& rng) {
  return Operand{l, random_image(l.dtype, storage_elems(l), rng)};
}

// An output operand whose storage starts as a recognisable pattern.
inline Operand output(const Layout& l) {
  return Operand{l, std::vector<uint8_t>(static_cast<size_t>(storage_elems(l)) * kiln::dtype_size(l.dtype), 0xA5)};
}

struct Outcome {
  Status cpu, gpu;
  std::vector<std::vector<uint8_t>> cpu_out, gpu_out;  // output storage images after the run
  bool ran = false;
};

// Runs `op` on the CPU (with_cpu) and on cuda:0 over copies of the same
// operands. With twice, the GPU runs a second time from the same initial
// outputs and must give the same bytes (determinism).
inline Outcome run_on(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins,
                      const std::vector<Operand>& outs, const std::vector<int64_t>& ints, const std::vector<double>& floats,
                      bool twice, bool with_cpu) {
  Outcome res;
  std::vector<std::unique_ptr<Twin>> tin, tout;
  for (const Operand& o : ins) tin.emplace_back(new Twin(o.init));
  for (const Operand& o : outs) tout.emplace_back(new Twin(o.init));
  for (const auto& t : tin) {
    KCHECK(t->status().ok()) << what << ": " << t->status().message();
    if (!t->status().ok()) return res;
  }
  for (const auto& t : tout) {
    KCHECK(t->status().ok()) << what << ": " << t->status().message();
    if (!t->status().ok()) return res;
  }
  auto call = [&](int backend) {
    const Device dev = backend == 0 ? kCpu : kGpu;
    std::vector<View> vin, vout;
    for (size_t i = 0; i < ins.size(); ++i) vin.push_back(make_view(dev, backend ? tin[i]->gpu() : tin[i]->cpu(), ins[i].layout));
    for (size_t i = 0; i < outs.size(); ++i) {
      vout.push_back(make_view(dev, backend ? tout[i]->gpu() : tout[i]->cpu(), outs[i].layout));
    }
    return kt::run(op, key, vin, vout, ints, floats);
  };
  if (with_cpu) res.cpu = call(0);
  res.gpu = call(1);
  for (const auto& t : tout) {
    res.cpu_out.push_back(t->cpu_bytes());
    std::vector<uint8_t> g;
    const Status rs = t->gpu_bytes(&g);
    KCHECK(rs.ok()) << what << ": reading back an output: " << rs.message();
    if (!rs.ok()) return res;
    res.gpu_out.push_back(g);
  }
  res.ran = true;
  if (twice && res.gpu.ok()) {
    for (const auto& t : tout) KCHECK(t->reset_gpu().ok()) << what;
    const Status again = call(1);
    KCHECK(again.ok()) << what << ": second cuda run: " << again.message();
    for (size_t i = 0; i < tout.size(); ++i) {
      std::vector<uint8_t> g;
      KCHECK(tout[i]->gpu_bytes(&g).ok()) << what;
      KCHECK(g == res.gpu_out[i]) << what << ": output " << i << " differs between two cuda runs ("
                                  << first_difference(res.gpu_out[i], g, outs[i].layout.dtype, false) << ")";
    }
  }
  return res;
}

inline Outcome run_both(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins,
                        const std::vector<Operand>& outs, const std::vector<int64_t>& ints = {},
                        const std::vector<double>& floats = {}, bool twice = false) {
  return run_on(what, op, key, ins, outs, ints, floats, twice, true);
}

// Only on cuda:0 (ops without a CPU kernel); res.cpu stays Ok, cpu_out the initial images.
inline Outcome run_gpu(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins,
                       const std::vector<Operand>& outs, const std::vector<int64_t>& ints = {},
                       const std::vector<double>& floats = {}, bool twice = false) {
  return run_on(what, op, key, ins, outs, ints, floats, twice, false);
}

// Both backends succeeded (else reported).
inline bool both_ok(const std::string& what, const Outcome& r) {
  if (!r.ran) return false;
  KCHECK(r.cpu.ok()) << what << ": cpu: " << r.cpu.message();
  KCHECK(r.gpu.ok()) << what << ": cuda: " << r.gpu.message();
  return r.cpu.ok() && r.gpu.ok();
}

// Both succeed and every output storage is the same (nan_equal: any NaN codes match).
inline void compare(const std::string& what, const char* op, DType key, const std::vector<Operand>& ins,
                    const std::vector<Operand>& outs, const std::vector<int64_t>& ints = {},
                    const std::vector<double>& floats = {}, bool nan_equal = false, bool twice = false) {
  const Outcome r = run_both(what, op, key, ins, outs, ints, floats, twice);
  if (!both_ok(what, r)) return;
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string diff = first_difference(r.cpu_out[i], r.gpu_out[i], outs[i].layout.dtype, nan_equal);
    KCHECK(diff.empty()) << what << ": output " << i << " (" << layout_str(outs[i].layout) << "): " << diff;
  }
}

}  // namespace dvt
