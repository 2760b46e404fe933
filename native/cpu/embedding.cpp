// CPU kernels embedding and embedding_backward (native/KERNELS.md
// "Embedding"); validation: native/core/embedding.cpp. Every id is checked
// before anything is written.
//
// embedding_backward sorts the positions by id (a stable counting sort), then
// each weight row v, independently and in parallel over v, sums the gout rows
// of its positions in increasing position order in float32 and rounds once:
// the same bits for any thread count.
#include <algorithm>
#include <vector>

#include "elementwise_table.h"
#include "kiln/element.h"
#include "kiln/embedding.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"

namespace kiln {
namespace cpu {
namespace {

constexpr int64_t kWork = 16384;  // elements per parallel chunk

Status check_ids(const char* op, const View& ids, int64_t vocab) {
  const int32_t* p = reinterpret_cast<const int32_t*>(ids.data());
  const int64_t s = ids.strides[0];
  for (int64_t i = 0; i < ids.shape[0]; ++i) {
    const int64_t v = p[i * s];
    if (v < 0 || v >= vocab) return embedding_id_error(op, i, v, vocab);
  }
  return Status::Ok();
}

Status embedding_kernel(const KernelArgs& args) {
  EmbeddingPlan plan;
  KILN_RETURN_IF_ERROR(prepare_embedding(args, &plan));
  const View& ids = plan.backward ? args.in[0] : args.in[1];
  KILN_RETURN_IF_ERROR(check_ids(args.op, ids, plan.vocab));
  const int64_t N = plan.n, D = plan.dim, V = plan.vocab;
  const int32_t* idp = reinterpret_cast<const int32_t*>(ids.data());
  const int64_t is = ids.strides[0];
  const int dt = static_cast<int>(args.in[plan.backward ? 1 : 0].dtype);
  const int64_t es = static_cast<int64_t>(dtype_size(static_cast<DType>(dt)));
  const ElementwiseTable& et = elementwise_table();

  if (!plan.backward) {
    const View &w = args.in[0], &out = args.out[0];
    if (N == 0 || D == 0) return Status::Ok();
    const CastRunFn copy = et.cast[dt][dt];
    parallel_for(N, std::max<int64_t>(1, kWork / D), [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) {
        const int64_t id = idp[n * is];
        copy(w.data() + id * w.strides[0] * es, w.strides[1], out.data() + n * out.strides[0] * es, out.strides[1], D);
      }
    });
    return Status::Ok();
  }

  const View &gout = args.in[1], &gw = args.out[0];
  if (V == 0 || D == 0) return Status::Ok();
  // Positions grouped by id, in increasing position order within each id.
  std::vector<int64_t> start(static_cast<size_t>(V) + 1, 0), order(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) ++start[static_cast<size_t>(idp[n * is]) + 1];
  for (int64_t v = 0; v < V; ++v) start[static_cast<size_t>(v) + 1] += start[static_cast<size_t>(v)];
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t n = 0; n < N; ++n) order[static_cast<size_t>(next[static_cast<size_t>(idp[n * is])]++)] = n;
  }
  const CastRunFn to_f32 = et.cast[dt][static_cast<int>(DType::Float32)];
  const CastRunFn from_f32 = et.cast[static_cast<int>(DType::Float32)][dt];
  parallel_for(V, std::max<int64_t>(1, kWork / D), [&](int64_t lo, int64_t hi) {
    std::vector<float> acc(static_cast<size_t>(D)), row(static_cast<size_t>(D));
    for (int64_t v = lo; v < hi; ++v) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t k = start[static_cast<size_t>(v)]; k < start[static_cast<size_t>(v) + 1]; ++k) {
        const int64_t n = order[static_cast<size_t>(k)];
        to_f32(gout.data() + n * gout.strides[0] * es, gout.strides[1], reinterpret_cast<char*>(row.data()), 1, D);
        for (int64_t d = 0; d < D; ++d) acc[static_cast<size_t>(d)] += row[static_cast<size_t>(d)];
      }
      from_f32(reinterpret_cast<const char*>(acc.data()), 1, gw.data() + v * gw.strides[0] * es, gw.strides[1], D);
    }
  });
  return Status::Ok();
}

const bool kRegistered = register_embedding_kernels(DeviceKind::CPU, embedding_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
