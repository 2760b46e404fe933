// Compiled instead of cuda/ when kiln is built without CUDA.
#include "kiln/cuda.h"

namespace kiln {
namespace cuda {
namespace {
const char* kReason = "kiln was built without CUDA (nvcc was not found at build time, or KILN_CUDA=OFF)";
Status unavailable() { return Status(StatusCode::DeviceError, std::string("kiln: CUDA is unavailable: ") + kReason); }
}  // namespace

bool compiled() { return false; }

const Availability& availability() {
  static const Availability a{false, kReason};
  return a;
}

std::vector<DeviceInfo> devices() { return {}; }
int runtime_version() { return 0; }
int driver_version() { return 0; }

Status malloc(int, size_t, void** ptr) {
  *ptr = nullptr;
  return unavailable();
}
void free(int, void*, size_t) {}
Status empty_cache(int) { return Status::Ok(); }
AllocatorStats allocator_stats(int) { return AllocatorStats(); }
Status memcpy_h2d(int, void*, const void*, size_t) { return unavailable(); }
Status memcpy_d2h(int, void*, const void*, size_t) { return unavailable(); }
Status memcpy_d2d(int, void*, int, const void*, size_t) { return unavailable(); }
Status synchronize(int) { return unavailable(); }
Status check_device(int) { return unavailable(); }

void set_cublaslt_enabled(bool) {}
bool cublaslt_enabled() { return false; }
bool cublaslt_loaded() { return false; }
std::string cublaslt_status() { return std::string("not loaded: ") + kReason; }
uint64_t cublaslt_matmul_count() { return 0; }

}  // namespace cuda
}  // namespace kiln
