// Embedding lookup and its weight gradient (native/KERNELS.md "Embedding"),
// validation shared by every backend:
//   embedding:          in = [weight [V, D], ids int32 [N]]   out = [out [N, D]]
//   embedding_backward: in = [ids int32 [N], gout [N, D]]     out = [gweight [V, D]]
// weight / gout / out / gweight: one float dtype (the key); any element strides.
// gweight is zeroed by the kernel, then row v accumulates the gout rows n with
// ids[n] == v in increasing n, in float32, rounded once.
#pragma once
#include <cstdint>

#include "kiln/registry.h"
#include "kiln/status.h"
#include "kiln/view.h"

namespace kiln {

struct EmbeddingPlan {
  bool backward = false;
  int64_t vocab = 0, dim = 0, n = 0;  // V, D, N
};
// For "embedding" and "embedding_backward" (by args.op). Id values are data
// and are checked by the kernel (embedding_id_error).
Status prepare_embedding(const KernelArgs& args, EmbeddingPlan* plan);

// The ValueError for an id outside [0, V):
// "kiln: embedding: id 12 at position 4 is outside [0, 10)".
Status embedding_id_error(const char* op, int64_t position, int64_t value, int64_t vocab);

// Registers both ops for float32, float16 and bfloat16 on `device`.
bool register_embedding_kernels(DeviceKind device, KernelFn fn);

}  // namespace kiln
