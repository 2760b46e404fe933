// CPU kernels adamw_step, lamb_step, lars_step (SGD too) and optim_grad_sumsq
// (native/KERNELS.md "Optimizers"). Validation and host scalars: native/core/optim.cpp;
// inner loops per ISA level: optim_impl.inc.
//
// Work: every tensor of the call is cut into blocks of optim::kCpuBlock
// elements; the blocks of all tensors form one list, cut into one contiguous
// run per thread with about the same number of elements. One pass over memory
// per tensor (AdamW, SGD, LARS without adaptation), two for LAMB and adapted
// LARS: pass A reduces the norms (float32 per block), the norms are finished
// in float64 in block order per tensor, pass B applies. No temporaries of
// parameter size. Results never depend on the thread count or the ISA level.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/optim.h"
#include "kiln/registry.h"
#include "kiln/threadpool.h"
#include "optim_table.h"

namespace kiln {
namespace cpu {
namespace {

using optim::OptimTensor;

constexpr int64_t kSerialBelow = 1 << 15;  // elements: smaller calls run on the calling thread

struct Item {
  int32_t tensor;
  int64_t begin, end;
};

// The blocks of the tensors `use` accepts, tensor by tensor, in order.
template <class Use>
std::vector<Item> make_items(const std::vector<OptimTensor>& t, Use use) {
  std::vector<Item> items;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].n == 0 || !use(static_cast<int>(i))) continue;
    for (int64_t b = 0; b < t[i].n; b += optim::kCpuBlock) {
      items.push_back(Item{static_cast<int32_t>(i), b, std::min(t[i].n, b + optim::kCpuBlock)});
    }
  }
  return items;
}

// Calls fn(k) for every item, split over the threads by element count.
template <class Fn>
void run_items(const std::vector<Item>& items, Fn fn) {
  const int64_t count = static_cast<int64_t>(items.size());
  std::vector<int64_t> start(count + 1, 0);
  for (int64_t k = 0; k < count; ++k) start[k + 1] = start[k] + (items[k].end - items[k].begin);
  const int64_t total = start[count];
  const int threads = num_threads();
  if (total < kSerialBelow || threads <= 1 || count <= 1) {
    for (int64_t k = 0; k < count; ++k) fn(k);
    return;
  }
  const int slots = static_cast<int>(std::min<int64_t>(threads, count));
  std::vector<int64_t> bound(slots + 1);
  for (int s = 0; s <= slots; ++s) {
    const int64_t target = total / slots * s + (total % slots) * s / slots;
    bound[s] = std::lower_bound(start.begin(), start.begin() + count, target) - start.begin();
  }
  bound[slots] = count;
  parallel_for(slots, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s) {
      for (int64_t k = bound[s]; k < bound[s + 1]; ++k) fn(k);
    }
  });
}

std::vector<OptimPtrs> pointers(const std::vector<OptimTensor>& t) {
  std::vector<OptimPtrs> out(t.size());
  auto f32 = [](const View* v) { return v == nullptr ? nullptr : reinterpret_cast<float*>(v->data()); };
  for (size_t i = 0; i < t.size(); ++i) {
    out[i].p = t[i].p->data();
    out[i].g = t[i].g->data();
    out[i].m = f32(t[i].m);
    out[i].v = f32(t[i].v);
    out[i].vmax = f32(t[i].vmax);
    out[i].buf = f32(t[i].buf);
    out[i].master = f32(t[i].master);
  }
  return out;
}

// Per tensor: float64 sums of the block partials a[k], b[k], in block order.
void finish_norms(const std::vector<Item>& items, const std::vector<float>& a, const std::vector<float>& b, size_t n,
                  std::vector<double>* sa, std::vector<double>* sb) {
  sa->assign(n, 0.0);
  sb->assign(n, 0.0);
  for (size_t k = 0; k < items.size(); ++k) {
    (*sa)[items[k].tensor] += static_cast<double>(a[k]);
    (*sb)[items[k].tensor] += static_cast<double>(b[k]);
  }
}

int dt(const OptimTensor& t) { return optim_dtype_index(t.p->dtype); }

Status adamw_kernel(const KernelArgs& args) {
  optim::AdamwPlan plan;
  KILN_RETURN_IF_ERROR(optim::prepare_adamw(args, &plan));
  const OptimTable& table = optim_table();
  const std::vector<OptimPtrs> ptr = pointers(plan.t);
  const std::vector<Item> items = make_items(plan.t, [](int) { return true; });
  run_items(items, [&](int64_t k) {
    const Item& it = items[k];
    const OptimTensor& t = plan.t[it.tensor];
    table.adamw[dt(t)][t.master != nullptr][plan.amsgrad][plan.l2](ptr[it.tensor], plan.c, plan.s[it.tensor], it.begin,
                                                                    it.end);
  });
  return Status::Ok();
}

Status lamb_kernel(const KernelArgs& args) {
  optim::LambPlan plan;
  KILN_RETURN_IF_ERROR(optim::prepare_lamb(args, &plan));
  const OptimTable& table = optim_table();
  const std::vector<OptimPtrs> ptr = pointers(plan.t);
  const std::vector<Item> items = make_items(plan.t, [](int) { return true; });
  std::vector<float> pp(items.size()), uu(items.size());
  run_items(items, [&](int64_t k) {
    const Item& it = items[k];
    const OptimTensor& t = plan.t[it.tensor];
    table.lamb_a[dt(t)][t.master != nullptr][plan.decay](ptr[it.tensor], plan.c, plan.s[it.tensor], it.begin, it.end,
                                                          &pp[k], &uu[k]);
  });
  std::vector<double> wn2, un2;
  finish_norms(items, pp, uu, plan.t.size(), &wn2, &un2);
  float* ratio = plan.ratio == nullptr ? nullptr : reinterpret_cast<float*>(plan.ratio->data());
  for (size_t i = 0; i < plan.t.size(); ++i) {
    const double r = optim::lamb_ratio(std::sqrt(wn2[i]), std::sqrt(un2[i]), plan.t[i].adapt, plan.trust_clip,
                                       plan.min_coeff, plan.max_coeff);
    plan.s[i].lr_r = static_cast<float>(plan.lr * r);
    if (ratio != nullptr) ratio[i] = static_cast<float>(r);
  }
  run_items(items, [&](int64_t k) {
    const Item& it = items[k];
    const OptimTensor& t = plan.t[it.tensor];
    table.lamb_b[dt(t)][t.master != nullptr][plan.decay](ptr[it.tensor], plan.c, plan.s[it.tensor], it.begin, it.end);
  });
  return Status::Ok();
}

Status lars_kernel(const KernelArgs& args) {
  optim::LarsPlan plan;
  KILN_RETURN_IF_ERROR(optim::prepare_lars(args, &plan));
  const OptimTable& table = optim_table();
  const std::vector<OptimPtrs> ptr = pointers(plan.t);
  const bool combined = plan.norm == optim::kLarsCombined;
  if (plan.needs_norms()) {
    const std::vector<Item> items = make_items(plan.t, [&](int i) { return plan.t[i].adapt; });
    std::vector<float> pp(items.size()), gg(items.size());
    run_items(items, [&](int64_t k) {
      const Item& it = items[k];
      const OptimTensor& t = plan.t[it.tensor];
      table.lars_a[dt(t)][t.master != nullptr][combined](ptr[it.tensor], plan.c, plan.s[it.tensor], it.begin, it.end,
                                                         &pp[k], &gg[k]);
    });
    std::vector<double> wn2, gn2;
    finish_norms(items, pp, gg, plan.t.size(), &wn2, &gn2);
    for (size_t i = 0; i < plan.t.size(); ++i) {
      const double a = optim::lars_ratio(std::sqrt(wn2[i]), std::sqrt(gn2[i]), plan.t[i].wd, plan.eta, plan.eps, combined,
                                         plan.trust_clip, plan.lr, plan.t[i].adapt);
      plan.s[i].a = static_cast<float>(a);
    }
  }
  if (plan.ratio != nullptr) {
    float* ratio = reinterpret_cast<float*>(plan.ratio->data());
    for (size_t i = 0; i < plan.t.size(); ++i) ratio[i] = plan.s[i].a;
  }
  const std::vector<Item> items = make_items(plan.t, [](int) { return true; });
  run_items(items, [&](int64_t k) {
    const Item& it = items[k];
    const OptimTensor& t = plan.t[it.tensor];
    table.lars_b[dt(t)][t.master != nullptr][plan.style][plan.nesterov](ptr[it.tensor], plan.c, plan.s[it.tensor],
                                                                        t.first, it.begin, it.end);
  });
  return Status::Ok();
}

Status sumsq_kernel(const KernelArgs& args) {
  optim::SumsqPlan plan;
  KILN_RETURN_IF_ERROR(optim::prepare_sumsq(args, &plan));
  const OptimTable& table = optim_table();
  const size_t n = plan.g.size();
  std::vector<Item> items;
  for (size_t i = 0; i < n; ++i) {
    const int64_t len = plan.g[i]->numel();
    for (int64_t b = 0; b < len; b += optim::kCpuBlock) {
      items.push_back(Item{static_cast<int32_t>(i), b, std::min(len, b + optim::kCpuBlock)});
    }
  }
  std::vector<float> ss(items.size()), nf(items.size());
  run_items(items, [&](int64_t k) {
    const Item& it = items[k];
    const View& g = *plan.g[it.tensor];
    table.sumsq[optim_dtype_index(g.dtype)](g.data(), plan.gscale, it.begin, it.end, &ss[k], &nf[k]);
  });
  std::vector<double> sum, flag;
  finish_norms(items, ss, nf, n, &sum, &flag);
  float* out = reinterpret_cast<float*>(plan.out->data());
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(sum[i]);
    out[n + i] = std::isnan(flag[i]) ? 1.0f : 0.0f;
  }
  return Status::Ok();
}

const bool kRegistered = optim::register_optim_kernel("adamw_step", DeviceKind::CPU, adamw_kernel) &&
                         optim::register_optim_kernel("lamb_step", DeviceKind::CPU, lamb_kernel) &&
                         optim::register_optim_kernel("lars_step", DeviceKind::CPU, lars_kernel) &&
                         optim::register_optim_kernel("optim_grad_sumsq", DeviceKind::CPU, sumsq_kernel);

}  // namespace
}  // namespace cpu
}  // namespace kiln
