#include "kiln/embedding.h"

#include <cstring>
#include <string>

namespace kiln {

namespace {
std::string prefix(const char* op) { return std::string("kiln: ") + op + ": "; }
bool arith_float(DType t) { return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16; }
}  // namespace

Status prepare_embedding(const KernelArgs& args, EmbeddingPlan* plan) {
  const char* op = args.op;
  if (std::strcmp(op, "embedding") == 0) {
    plan->backward = false;
  } else if (std::strcmp(op, "embedding_backward") == 0) {
    plan->backward = true;
  } else {
    return Status(StatusCode::Internal, std::string("kiln: unknown embedding op ") + op);
  }
  KILN_RETURN_IF_ERROR(expect_counts(args, 2, 1, 0, 0));
  const View& table = plan->backward ? args.out[0] : args.in[0];   // weight / gweight [V, D]
  const View& ids = plan->backward ? args.in[0] : args.in[1];
  const View& rows = plan->backward ? args.in[1] : args.out[0];    // gout / out [N, D]
  const char* table_role = plan->backward ? "gweight" : "weight";
  const char* rows_role = plan->backward ? "gout" : "output";
  if (!arith_float(table.dtype)) return no_kernel(op, table.dtype, table.device.kind);
  if (ids.dtype != DType::Int32) {
    return Status(StatusCode::DTypeError, prefix(op) + "ids must have dtype int32, got " + ids.describe());
  }
  if (rows.dtype != table.dtype) {
    return Status(StatusCode::DTypeError, prefix(op) + rows_role + " " + rows.describe() + " must have the dtype of " +
                                              table_role + " " + table.describe());
  }
  if (table.ndim != 2) {
    return Status(StatusCode::ShapeError, prefix(op) + table_role + " " + table.describe() + " must be [num_embeddings, dim]");
  }
  if (ids.ndim != 1) return Status(StatusCode::ShapeError, prefix(op) + "ids " + ids.describe() + " must be one-dimensional");
  plan->vocab = table.shape[0];
  plan->dim = table.shape[1];
  plan->n = ids.shape[0];
  if (rows.ndim != 2 || rows.shape[0] != plan->n || rows.shape[1] != plan->dim) {
    return Status(StatusCode::ShapeError, prefix(op) + rows_role + " " + rows.describe() + " must be [" +
                                              std::to_string(plan->n) + ", " + std::to_string(plan->dim) + "] (ids " +
                                              ids.shape_str() + ", " + table_role + " " + table.shape_str() + ")");
  }
  return Status::Ok();
}

Status embedding_id_error(const char* op, int64_t position, int64_t value, int64_t vocab) {
  return Status(StatusCode::ValueError, prefix(op) + "id " + std::to_string(value) + " at position " +
                                            std::to_string(position) + " is outside [0, " + std::to_string(vocab) + ")");
}

bool register_embedding_kernels(DeviceKind device, KernelFn fn) {
  register_kernels("embedding", device, kFloat16Plus, fn);
  register_kernels("embedding_backward", device, kFloat16Plus, fn);
  return true;
}

}  // namespace kiln
