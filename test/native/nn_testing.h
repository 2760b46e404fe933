// Test tensors for the suites 'norm', 'rope', 'attention' and 'cuda_nn': host
// tensors (testing.h) with guard bytes around (and between) the elements a
// view addresses, in random layouts (contiguous, permuted, padded with an
// offset and a non-unit last stride, broadcast), element access as float64
// (values are decoded exactly; writes round once to the dtype), and error
// statistics in units of a scale.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "testing.h"

namespace nnt {

using kiln::DType;
using kiln::View;
using kt::clone;
using kt::isa_levels;
using kt::Rng;
using kt::shape_str;
using kt::subnormal_floor;
using kt::unit_roundoff;
using Tensor = kt::HostTensor;

enum class Layout { Contig, Permuted, Padded, Broadcast };
inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contig: return "contig";
    case Layout::Permuted: return "permuted";
    case Layout::Padded: return "padded";
    default: return "broadcast";
  }
}

const unsigned char kGuard = 0xCD;
// Two spare elements after the last one a view addresses, three after the offset when it is empty.
constexpr kt::Padding kPadding{kGuard, 2, 3};

// Index of float32, float16, bfloat16 (for per-dtype statistics).
inline int dt_index(DType dt) { return dt == DType::Float32 ? 0 : (dt == DType::Float16 ? 1 : 2); }

// A tensor of `shape` in `layout`: Permuted stores the dims in a random order;
// Padded pads every dim's stride, uses last-dim stride 1 or 2 and an offset;
// Broadcast gives the first dim longer than 1 stride 0 (inputs only).
inline Tensor make(DType dt, const std::vector<int64_t>& shape, Layout layout, Rng& rng) {
  const int nd = static_cast<int>(shape.size());
  std::vector<int64_t> strides(static_cast<size_t>(nd));
  std::vector<int> order(static_cast<size_t>(nd));  // order[0] = innermost dim in memory
  for (int i = 0; i < nd; ++i) order[static_cast<size_t>(i)] = nd - 1 - i;
  if (layout == Layout::Permuted) {
    for (int i = nd - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.below(i + 1))]);
  }
  int64_t stride = layout == Layout::Padded ? 1 + rng.below(2) : 1;
  for (int i = 0; i < nd; ++i) {
    const int d = order[static_cast<size_t>(i)];
    strides[static_cast<size_t>(d)] = stride;
    stride *= std::max<int64_t>(1, shape[static_cast<size_t>(d)]);
    if (layout == Layout::Padded) stride += rng.below(3);
  }
  int64_t offset = 0;
  if (layout == Layout::Padded) offset = 1 + rng.below(5);
  if (layout == Layout::Broadcast) {
    for (int i = 0; i < nd; ++i) {
      if (shape[static_cast<size_t>(i)] > 1) {
        strides[static_cast<size_t>(i)] = 0;
        break;
      }
    }
  }
  return kt::with_storage(dt, shape, strides, offset, kPadding, layout_name(layout));
}

inline Layout random_layout(Rng& rng, bool allow_broadcast) {
  return static_cast<Layout>(rng.below(allow_broadcast ? 4 : 3));
}

// Largest |a[i] - b[i]| / scale (NaN when either is NaN and the other is not).
struct ErrStat {
  double max_err = 0;
  int64_t where = -1;
  void add(double got, double want, double scale, int64_t i) {
    double e;
    if (std::isnan(got) || std::isnan(want)) {
      e = (std::isnan(got) && std::isnan(want)) ? 0 : std::numeric_limits<double>::infinity();
    } else if (std::isinf(got) || std::isinf(want)) {
      e = got == want ? 0 : std::numeric_limits<double>::infinity();
    } else {
      e = std::fabs(got - want) / scale;
    }
    if (where < 0 || e > max_err) {
      max_err = e;
      where = i;
    }
  }
};

}  // namespace nnt
