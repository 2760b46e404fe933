// Reading kernel operands from JS: a view is passed as the array
// [storage, dtypeCode, shape[], strides[], offset].
#pragma once
#include <napi.h>

#include <string>

#include "kiln/view.h"

namespace kiln {
namespace addon {

// Fills `out` from `value`; on failure returns false and sets `error`.
bool read_view(const Napi::Value& value, View* out, std::string* error);
// Reads a JS number that must be an integer representable exactly (|x| <= 2^53).
bool read_int(const Napi::Value& value, int64_t* out);

}  // namespace addon
}  // namespace kiln
