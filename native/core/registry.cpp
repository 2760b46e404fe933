#include "kiln/registry.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "kiln/cuda.h"

namespace kiln {
namespace {

struct Key {
  std::string op;
  int device;
  int dtype;
  bool operator<(const Key& o) const {
    if (op != o.op) return op < o.op;
    if (device != o.device) return device < o.device;
    return dtype < o.dtype;
  }
};

// Function-local statics: registration runs from static initialisers in other
// translation units, in no particular order.
std::map<Key, KernelFn>& table() {
  static std::map<Key, KernelFn> t;
  return t;
}

const char* device_kind_name(DeviceKind k) { return k == DeviceKind::CPU ? "cpu" : "cuda"; }

}  // namespace

bool register_kernel(const char* op, DeviceKind device, DType dtype, KernelFn fn) {
  table()[Key{op, static_cast<int>(device), static_cast<int>(dtype)}] = fn;
  return true;
}

std::vector<std::string> registered_kernels() {
  std::vector<std::string> names;
  for (const auto& kv : table()) {
    names.push_back(kv.first.op + "/" + device_kind_name(static_cast<DeviceKind>(kv.first.device)) + "/" +
                    dtype_name(static_cast<DType>(kv.first.dtype)));
  }
  std::sort(names.begin(), names.end());  // the table is ordered by dtype code, not by name
  return names;
}

Status run_kernel(DType key_dtype, const KernelArgs& args) {
  const View* first = args.n_out > 0 ? &args.out[0] : (args.n_in > 0 ? &args.in[0] : nullptr);
  if (first == nullptr) {
    return Status(StatusCode::Internal, std::string("kiln: ") + args.op + ": no operands");
  }
  const Device device = first->device;
  auto check_same = [&](const View& v) -> Status {
    if (v.device != device) {
      return Status(StatusCode::DeviceError, std::string("kiln: ") + args.op + ": operands are on different devices (" +
                                                 first->describe() + " and " + v.describe() + ")");
    }
    return Status::Ok();
  };
  for (int i = 0; i < args.n_in; ++i) KILN_RETURN_IF_ERROR(check_same(args.in[i]));
  for (int i = 0; i < args.n_out; ++i) KILN_RETURN_IF_ERROR(check_same(args.out[i]));
  if (device.kind == DeviceKind::CUDA) KILN_RETURN_IF_ERROR(cuda::check_device(device.index));
  for (int i = 0; i < args.n_in; ++i) KILN_RETURN_IF_ERROR(check_view_bounds(args.in[i], args.op, "input"));
  for (int i = 0; i < args.n_out; ++i) KILN_RETURN_IF_ERROR(check_view_bounds(args.out[i], args.op, "output"));

  const auto it = table().find(Key{args.op, static_cast<int>(device.kind), static_cast<int>(key_dtype)});
  if (it == table().end()) return no_kernel(args.op, key_dtype, device.kind);
  return it->second(args);
}

Status no_kernel(const char* op, DType dtype, DeviceKind device) {
  return Status(StatusCode::NoKernel, std::string("kiln: op '") + op + "' has no kernel for dtype " + dtype_name(dtype) +
                                          " on device " + device_kind_name(device));
}

Status expect_counts(const KernelArgs& a, int n_in, int n_out, int n_ints, int n_floats) {
  if (a.n_in != n_in || a.n_out != n_out || a.n_ints != n_ints || a.n_floats != n_floats) {
    return Status(StatusCode::Internal,
                  std::string("kiln: ") + a.op + ": expected " + std::to_string(n_in) + " inputs, " +
                      std::to_string(n_out) + " outputs, " + std::to_string(n_ints) + " int and " +
                      std::to_string(n_floats) + " float attributes; got " + std::to_string(a.n_in) + ", " +
                      std::to_string(a.n_out) + ", " + std::to_string(a.n_ints) + ", " + std::to_string(a.n_floats));
  }
  return Status::Ok();
}

}  // namespace kiln
