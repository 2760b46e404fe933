// Suite 'int4kv': the INT4 KV cache ops of kiln/quant_kv.h on the CPU.
//
//   - quant_int4_kv: the packed nibbles and scale codes equal the recipe
//     written again from specs/quant.md with quant_testing.h's E4M3
//     reference (float32 / bfloat16 / float16 x, strided x, several group
//     sizes and per-head exponents), written into a window of a larger
//     cache buffer (the bytes around it untouched); a non-finite x is a
//     ValueError naming the element with nothing written; bad shapes, groups
//     and exponents are refused;
//   - attention_int4kv: against float64 attention over the K/V dequantized
//     from the same bytes by the reference (|o - o_ref| <= 1e-5 max |o_ref|):
//     grouped-query heads, causal decode (one query after a prefix), causal
//     prefill, a few queries at the end, non-causal, strided q, a window of
//     the cache; the same bits at every ISA level and for 1, 2 and 3 threads;
//     bad operands refused.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "harness.h"
#include "kiln/cpu_features.h"
#include "kiln/quant_kv.h"
#include "kiln/threadpool.h"
#include "quant_testing.h"

namespace {

using kiln::DType;
using kiln::StatusCode;
using qt::Tensor;

// A window [.., start .. start + s, ..] along dim 2 of a contiguous [B, H, cap, last] buffer.
kiln::View window(const Tensor& buf, int64_t start, int64_t s) {
  kiln::View v = buf.v;
  v.shape[2] = s;
  v.offset += start * v.strides[2];
  return v;
}

struct Cache {
  Tensor packed, scales;  // [B, H, cap, hd/2], [B, H, cap, hd/G], filled with 0xA5
  Cache(int64_t b, int64_t h, int64_t cap, int64_t hd, int64_t g)
      : packed(qt::make(DType::UInt8, {b, h, cap, hd / 2})), scales(qt::make(DType::Float8E4M3, {b, h, cap, hd / g})) {
    for (int64_t i = 0; i < packed.numel(); ++i) qt::set_byte(packed, i, 0xA5);
    for (int64_t i = 0; i < scales.numel(); ++i) qt::set_byte(scales, i, 0xA5);
  }
};

Tensor exps(const std::vector<int>& e) {
  Tensor t = qt::make(DType::Int8, {static_cast<int64_t>(e.size())});
  for (size_t i = 0; i < e.size(); ++i) qt::set_byte(t, static_cast<int64_t>(i), static_cast<uint8_t>(e[i]));
  return t;
}

kiln::Status quantize(const Tensor& x, const Tensor& e, const kiln::View& packed, const kiln::View& scales, int64_t g) {
  return kt::run("quant_int4_kv", x.dtype(), {x.v, e.v}, {packed, scales}, {g});
}

// The recipe from specs/quant.md with t = 2^e given: the scale code and q of one group.
void recipe_group(const std::vector<float>& x, int e, std::vector<int>& q, uint8_t& code) {
  const float t = std::ldexp(1.0f, e);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float y = (amax * t) / 7.0f;
  code = qt::e4m3_round(static_cast<double>(y));
  if (qt::e4m3_value(code) < std::ldexp(1.0, -9)) code = 0x01;
  const float s = static_cast<float>(qt::e4m3_value(code));
  q.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = static_cast<double>((x[i] * t) / s);
    double fl = std::floor(v);
    const double frac = v - fl;
    if (frac > 0.5 || (frac == 0.5 && std::fmod(fl, 2.0) != 0.0)) fl += 1.0;
    q[i] = static_cast<int>(std::min(7.0, std::max(-8.0, fl)));
  }
}

int nibble_at(const Tensor& packed, const std::vector<int64_t>& idx, int64_t d) {
  const uint8_t b = *packed.at(packed.elem({idx[0], idx[1], idx[2], d / 2}));
  return qt::from_nibble((d & 1) ? (b >> 4) : (b & 0xF));
}
uint8_t scale_at(const Tensor& scales, const std::vector<int64_t>& idx, int64_t g) {
  return *scales.at(scales.elem({idx[0], idx[1], idx[2], g}));
}

KTEST(int4kv, quantize_matches_the_recipe) {
  kt::Rng rng(12);
  struct Case {
    int64_t b, h, s, hd, g;
    DType dt;
    kt::Layout layout;
  };
  const Case cases[] = {{1, 2, 5, 16, 16, DType::Float32, kt::Layout::Contig},
                        {2, 3, 4, 16, 8, DType::BFloat16, kt::Layout::Strided},
                        {1, 1, 7, 64, 32, DType::Float16, kt::Layout::Transposed},
                        {2, 2, 1, 8, 2, DType::Float32, kt::Layout::Strided}};
  for (const Case& cs : cases) {
    Tensor x = qt::make(cs.dt, {cs.b, cs.h, cs.s, cs.hd}, cs.layout);
    for (int64_t i = 0; i < x.numel(); ++i) {
      double v = rng.normal() * (i % 11 == 0 ? 40.0 : 1.0);  // outliers
      if (i % 29 == 0) v = 0;
      if ((i / cs.hd) % 5 == 3) v *= 1e-5;  // tiny rows: scales at their floor
      x.set(i, v);
    }
    std::vector<int> ev;
    for (int64_t h = 0; h < cs.h; ++h) ev.push_back(static_cast<int>(rng.below(7)));
    const Tensor e = exps(ev);
    const int64_t cap = cs.s + 3, start = 2;
    Cache c(cs.b, cs.h, cap, cs.hd, cs.g);
    const kiln::Status st = quantize(x, e, window(c.packed, start, cs.s), window(c.scales, start, cs.s), cs.g);
    const std::string what = "B " + std::to_string(cs.b) + " H " + std::to_string(cs.h) + " S " + std::to_string(cs.s) + " hd " +
                             std::to_string(cs.hd) + " G " + std::to_string(cs.g) + " " + kiln::dtype_name(cs.dt) + " " + x.lay;
    KCHECK(st.ok()) << what << ": " << st.message();
    if (!st.ok()) continue;
    int bad = 0;
    for (int64_t bi = 0; bi < cs.b; ++bi)
      for (int64_t h = 0; h < cs.h; ++h)
        for (int64_t si = 0; si < cap; ++si) {
          const bool inside = si >= start && si < start + cs.s;
          for (int64_t g = 0; g < cs.hd / cs.g; ++g) {
            const std::vector<int64_t> idx{bi, h, si};
            if (!inside) {  // untouched
              bool same = scale_at(c.scales, idx, g) == 0xA5;
              for (int64_t d = g * cs.g; d < (g + 1) * cs.g; d += 2) same = same && *c.packed.at(c.packed.elem({bi, h, si, d / 2})) == 0xA5;
              if (!same && bad++ < 5) KCHECK(false) << what << ": wrote outside the window at s " << si;
              continue;
            }
            std::vector<float> xs;
            for (int64_t d = g * cs.g; d < (g + 1) * cs.g; ++d) xs.push_back(static_cast<float>(x.get(((bi * cs.h + h) * cs.s + si - start) * cs.hd + d)));
            std::vector<int> q;
            uint8_t code = 0;
            recipe_group(xs, ev[static_cast<size_t>(h)], q, code);
            bool same = scale_at(c.scales, idx, g) == code;
            for (int64_t d = g * cs.g; d < (g + 1) * cs.g; ++d) same = same && nibble_at(c.packed, idx, d) == q[static_cast<size_t>(d - g * cs.g)];
            if (!same && bad++ < 5) KCHECK(false) << what << ": group " << g << " of row " << bi << "," << h << "," << si - start;
          }
        }
    KCHECK(bad == 0) << what << ": " << bad << " groups differ";
  }
}

KTEST(int4kv, quantize_refuses_bad_input_and_writes_nothing) {
  Tensor x = qt::make(DType::Float32, {1, 2, 3, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, 0.5);
  x.set(1 * 24 + 2 * 8 + 5, NAN);  // x[0, 1, 2, 5]
  const Tensor e = exps({0, 3});
  Cache c(1, 2, 3, 8, 4);
  const kiln::Status s = quantize(x, e, c.packed.v, c.scales.v, 4);
  KCHECK(s.code() == StatusCode::ValueError && s.message().find("x[0, 1, 2, 5]") != std::string::npos) << s.message();
  bool untouched = true;
  for (int64_t i = 0; i < c.packed.numel(); ++i) untouched = untouched && qt::byte_at(c.packed, i) == 0xA5;
  for (int64_t i = 0; i < c.scales.numel(); ++i) untouched = untouched && qt::byte_at(c.scales, i) == 0xA5;
  KCHECK(untouched) << "a refused quantization wrote its outputs";
  x.set(1 * 24 + 2 * 8 + 5, 1.0);
  KCHECK(quantize(x, e, c.packed.v, c.scales.v, 3).code() == StatusCode::ValueError);  // 3 does not divide 8
  KCHECK(quantize(x, exps({0, 15}), c.packed.v, c.scales.v, 4).code() == StatusCode::ValueError);
  KCHECK(quantize(x, exps({0}), c.packed.v, c.scales.v, 4).code() == StatusCode::ShapeError);
  Cache wrong(1, 2, 3, 8, 2);  // scales for G = 2
  KCHECK(quantize(x, e, wrong.packed.v, wrong.scales.v, 4).code() == StatusCode::ShapeError);
  Tensor odd = qt::make(DType::Float32, {1, 2, 3, 7});
  KCHECK(quantize(odd, e, c.packed.v, c.scales.v, 7).code() == StatusCode::ShapeError);
  KCHECK(quantize(x, e, c.packed.v, c.scales.v, 4).ok());
}

// ---- attention -------------------------------------------------------------------------------

struct KvCase {
  int64_t b, hq, hkv, sq, len, hd, g;
  bool causal;
  kt::Layout qlayout;
};

// float64 attention over K/V dequantized from the cache bytes: o [b, hq, sq, hd] row-major.
std::vector<double> reference(const Tensor& q, const Cache& k, const Cache& v, const std::vector<int>& ek, const std::vector<int>& ev,
                              const KvCase& cs, int64_t start, double scale) {
  std::vector<double> o(static_cast<size_t>(cs.b * cs.hq * cs.sq * cs.hd));
  auto deq = [&](const Cache& c, int e, int64_t bi, int64_t h, int64_t j, int64_t d) {
    const std::vector<int64_t> idx{bi, h, start + j};
    return qt::e4m3_value(qt::w8_ref(nibble_at(c.packed, idx, d), scale_at(c.scales, idx, d / cs.g))) * std::ldexp(1.0, -e);
  };
  for (int64_t bi = 0; bi < cs.b; ++bi)
    for (int64_t h = 0; h < cs.hq; ++h)
      for (int64_t i = 0; i < cs.sq; ++i) {
        const int64_t kvh = h / (cs.hq / cs.hkv), last = cs.causal ? cs.len - cs.sq + i : cs.len - 1;
        std::vector<double> sc;
        double top = -INFINITY;
        for (int64_t j = 0; j <= last; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < cs.hd; ++d) dot += q.get(((bi * cs.hq + h) * cs.sq + i) * cs.hd + d) * deq(k, ek[static_cast<size_t>(kvh)], bi, kvh, j, d);
          sc.push_back(dot * scale);
          top = std::max(top, dot * scale);
        }
        double total = 0;
        for (double& s : sc) total += (s = std::exp(s - top));
        for (int64_t d = 0; d < cs.hd; ++d) {
          double acc = 0;
          for (int64_t j = 0; j <= last; ++j) acc += sc[static_cast<size_t>(j)] * deq(v, ev[static_cast<size_t>(kvh)], bi, kvh, j, d);
          o[static_cast<size_t>(((bi * cs.hq + h) * cs.sq + i) * cs.hd + d)] = acc / total;
        }
      }
  return o;
}

kiln::Status attend(const Tensor& q, const Cache& k, const Tensor& ek, const Cache& v, const Tensor& ev, int64_t start, int64_t len,
                    bool causal, double scale, Tensor& o) {
  return kt::run("attention_int4kv", DType::Float32,
                 {q.v, window(k.packed, start, len), window(k.scales, start, len), ek.v, window(v.packed, start, len),
                  window(v.scales, start, len), ev.v},
                 {o.v}, {causal ? 1 : 0}, {scale});
}

KTEST(int4kv, attention_matches_float64_over_the_dequantized_cache) {
  kt::Rng rng(21);
  const KvCase cases[] = {
      {1, 4, 2, 1, 9, 16, 16, true, kt::Layout::Contig},      // decode, grouped-query
      {2, 2, 2, 6, 6, 8, 4, true, kt::Layout::Strided},       // prefill
      {1, 3, 1, 3, 20, 32, 8, true, kt::Layout::Transposed},  // a few queries at the end
      {1, 2, 1, 4, 11, 16, 16, false, kt::Layout::Contig},    // not causal
  };
  kt::RestoreIsa restore;  // and the thread count
  for (const KvCase& cs : cases) {
    const int64_t start = 1, cap = cs.len + 2;
    Cache k(cs.b, cs.hkv, cap, cs.hd, cs.g), v(cs.b, cs.hkv, cap, cs.hd, cs.g);
    std::vector<int> ek, ev;
    for (int64_t h = 0; h < cs.hkv; ++h) {
      ek.push_back(static_cast<int>(rng.below(5)));
      ev.push_back(static_cast<int>(rng.below(5)));
    }
    const Tensor tek = exps(ek), tev = exps(ev);
    for (Cache* c : {&k, &v}) {
      Tensor x = qt::make(DType::Float32, {cs.b, cs.hkv, cs.len, cs.hd});
      x.randomize(rng, -3.0, 3.0);
      const kiln::Status s = quantize(x, c == &k ? tek : tev, window(c->packed, start, cs.len), window(c->scales, start, cs.len), cs.g);
      KCHECK(s.ok()) << s.message();
    }
    Tensor q = qt::make(DType::Float32, {cs.b, cs.hq, cs.sq, cs.hd}, cs.qlayout);
    q.randomize(rng, -1.0, 1.0);
    const double scale = 1.0 / std::sqrt(static_cast<double>(cs.hd));
    const std::vector<double> want = reference(q, k, v, ek, ev, cs, start, scale);
    double peak = 0;
    for (double w : want) peak = std::max(peak, std::fabs(w));
    std::vector<unsigned char> first;
    for (int run = 0; run < 3 * static_cast<int>(kt::isa_levels().size()); ++run) {
      const int threads = 1 + run % 3;
      const kiln::cpu::IsaLevel level = kt::isa_levels()[static_cast<size_t>(run / 3)];
      kiln::cpu::set_isa(level);
      kiln::cpu::set_num_threads(threads);
      Tensor o = qt::make(DType::Float32, {cs.b, cs.hq, cs.sq, cs.hd});
      const kiln::Status s = attend(q, k, tek, v, tev, start, cs.len, cs.causal, scale, o);
      const std::string what = "B " + std::to_string(cs.b) + " Hq " + std::to_string(cs.hq) + " Hkv " + std::to_string(cs.hkv) +
                               " Sq " + std::to_string(cs.sq) + " L " + std::to_string(cs.len) + (cs.causal ? " causal" : "") +
                               " threads " + std::to_string(threads) + " " + kiln::cpu::isa_name(level);
      KCHECK(s.ok()) << what << ": " << s.message();
      if (!s.ok()) continue;
      int bad = 0;
      for (int64_t i = 0; i < o.numel(); ++i) {
        const double err = std::fabs(o.get(i) - want[static_cast<size_t>(i)]);
        if (!(err <= 1e-5 * peak) && bad++ < 5) KCHECK(false) << what << ": o[" << i << "] = " << o.get(i) << ", want " << want[static_cast<size_t>(i)];
      }
      KCHECK(bad == 0) << what << ": " << bad << " outputs off";
      if (run == 0) first = o.bytes();
      else KCHECK(o.bytes() == first) << what << ": differs from the portable level with one thread";
    }
  }
}

KTEST(int4kv, attention_refuses_bad_operands) {
  Cache k(1, 2, 4, 8, 4), v(1, 2, 4, 8, 4), v2(1, 2, 4, 8, 2);
  const Tensor e = exps({0, 0});
  for (Cache* c : {&k, &v, &v2}) {
    for (int64_t i = 0; i < c->scales.numel(); ++i) qt::set_byte(c->scales, i, 0x38);
  }
  Tensor q = qt::make(DType::Float32, {1, 4, 2, 8});
  kt::Rng rng(3);
  q.randomize(rng);
  Tensor o = qt::make(DType::Float32, {1, 4, 2, 8});
  KCHECK(attend(q, k, e, v, e, 0, 4, true, 0.5, o).ok());
  Tensor q3 = qt::make(DType::Float32, {1, 3, 2, 8}), o3 = qt::make(DType::Float32, {1, 3, 2, 8});
  KCHECK(attend(q3, k, e, v, e, 0, 4, true, 0.5, o3).code() == StatusCode::ShapeError);  // 3 query heads, 2 kv heads
  Tensor q5 = qt::make(DType::Float32, {1, 4, 5, 8}), o5 = qt::make(DType::Float32, {1, 4, 5, 8});
  KCHECK(attend(q5, k, e, v, e, 0, 4, true, 0.5, o5).code() == StatusCode::ShapeError);  // 5 causal queries, 4 cached
  KCHECK(attend(q, k, e, v, e, 0, 4, true, 0.0, o).code() == StatusCode::ValueError);
  KCHECK(attend(q, k, e, v2, e, 0, 4, true, 0.5, o).code() == StatusCode::ShapeError);  // groups of 4 vs 2
  KCHECK(attend(q, k, exps({0, 20}), v, e, 0, 4, true, 0.5, o).code() == StatusCode::ValueError);
  Tensor qh = qt::make(DType::BFloat16, {1, 4, 2, 8});
  KCHECK(attend(qh, k, e, v, e, 0, 4, true, 0.5, o).code() == StatusCode::DTypeError);
  KCHECK(attend(q, k, e, v, e, 0, 0, false, 0.5, o).code() == StatusCode::ShapeError);  // nothing cached
}

}  // namespace
