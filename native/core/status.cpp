#include "kiln/status.h"

namespace kiln {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::Ok: return "Ok";
    case StatusCode::ShapeError: return "ShapeError";
    case StatusCode::DTypeError: return "DTypeError";
    case StatusCode::DeviceError: return "DeviceError";
    case StatusCode::ValueError: return "ValueError";
    case StatusCode::NoKernel: return "NoKernel";
    case StatusCode::OutOfMemory: return "OutOfMemory";
    case StatusCode::Internal: return "Internal";
  }
  return "Internal";
}

}  // namespace kiln
