// Portable row kernels (double accumulation); also the reference the AVX2
// variant is tested against.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/variant_table.h"
#include "kernels/norm/norm.h"

namespace infopt {
namespace norm {
namespace {

void softmax_row(const float* x, float* y, int64_t n, bool log) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t k = 0; k < n; ++k) mx = std::max(mx, x[k]);
  if (std::isinf(mx) && mx < 0) mx = 0.f;
  double sum = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    const float e = std::exp(x[k] - mx);
    if (!log) y[k] = e;
    sum += e;
  }
  if (log) {
    const float lse = static_cast<float>(std::log(sum)) + mx;
    for (int64_t k = 0; k < n; ++k) y[k] = x[k] - lse;
  } else {
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t k = 0; k < n; ++k) y[k] *= inv;
  }
}

void layernorm_row(const float* x, float* y, int64_t n, const float* scale, const float* bias, float eps, float* mean,
                   float* inv_std) {
  double s = 0.0;
  for (int64_t k = 0; k < n; ++k) s += x[k];
  const double m = n ? s / static_cast<double>(n) : 0.0;
  double v = 0.0;
  for (int64_t k = 0; k < n; ++k) v += (x[k] - m) * (x[k] - m);
  const double var = n ? v / static_cast<double>(n) : 0.0;
  const float is = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
  const float mf = static_cast<float>(m);
  for (int64_t k = 0; k < n; ++k) {
    float r = (x[k] - mf) * is;
    if (scale) r *= scale[k];
    if (bias) r += bias[k];
    y[k] = r;
  }
  if (mean) *mean = mf;
  if (inv_std) *inv_std = is;
}

void lrn_run(const float* const* win, int nwin, const float* x, float* y, int64_t n, float bias, float scale,
             float beta) {
  for (int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int w = 0; w < nwin; ++w) s += static_cast<double>(win[w][i]) * win[w][i];
    y[i] = static_cast<float>(x[i] / std::pow(bias + scale * s, static_cast<double>(beta)));
  }
}

}  // namespace

const Variant& scalar_variant() {
  static const Variant v{"infopt_f32_norm__scalar", Isa::Scalar, softmax_row, layernorm_row, lrn_run};
  return v;
}

const std::vector<const Variant*>& variants() {
  return family_variants(scalar_variant(), INFOPT_AVX2_VARIANT());
}

const Variant& variant_for(Isa isa) {
  return family_variant_for(isa, scalar_variant(), INFOPT_AVX2_VARIANT());
}

}  // namespace norm
}  // namespace infopt
