// Host scratch memory for kernels: malloc'd (64-byte aligned), freed on scope
// exit; a failed allocation is reported (alloc() returns false), never thrown.
#pragma once
#include <cstddef>
#include <cstdlib>

namespace kiln {
namespace cpu {

struct Scratch {
  void* p = nullptr;
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(p); }
  bool alloc(size_t bytes) {
    std::free(p);
    p = nullptr;
    bytes = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, bytes) != 0) p = nullptr;
    return p != nullptr;
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

}  // namespace cpu
}  // namespace kiln
