// The CPU thread pool. Work is split statically into contiguous chunks, so a
// kernel that reduces only inside a chunk gives results independent of timing;
// kernels that must not depend on the thread count split over output elements.
#pragma once
#include <cstdint>
#include <functional>

namespace kiln {
namespace cpu {

int num_threads();
// n >= 1; 0 restores the default (hardware threads, or KILN_NUM_THREADS).
void set_num_threads(int n);
int default_num_threads();

// Calls fn(begin, end) for contiguous chunks covering [0, n), each at least
// `grain` long (except a shorter total), on up to num_threads() threads, and
// returns when all are done. Nested calls run inline on the calling thread.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace cpu
}  // namespace kiln
