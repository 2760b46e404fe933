// Kernels never throw and never abort: they return a Status. Only the N-API
// glue (native/addon) turns a bad Status into a JS error of the matching class.
#pragma once
#include <string>
#include <utility>

namespace kiln {

enum class StatusCode : int {
  Ok = 0,
  ShapeError,   // shapes or strides do not fit the op
  DTypeError,   // dtype not allowed for the op
  DeviceError,  // device unavailable or operands on different devices
  ValueError,   // a bad scalar argument
  NoKernel,     // registry has no kernel for (op, device, dtype)
  OutOfMemory,
  Internal,     // a backend call failed (e.g. a CUDA error)
};

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::Ok; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::Ok;
  std::string message_;
};

// Name of the code as the JS side knows it (lib/errors.ts maps it to a class).
const char* status_code_name(StatusCode code);

}  // namespace kiln

#define KILN_RETURN_IF_ERROR(expr)          \
  do {                                      \
    ::kiln::Status kiln_status_ = (expr);   \
    if (!kiln_status_.ok()) return kiln_status_; \
  } while (0)
