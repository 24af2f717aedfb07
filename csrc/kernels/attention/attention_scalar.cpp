// Portable attention inner kernels: plain loops, the reference the AVX2
// variant is tested against.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/attention/attention.h"
#include "kernels/variant_table.h"

namespace infopt {
namespace attention {
namespace {

void rows_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
               int64_t ldc, float alpha, const float* row_scale) {
  for (int64_t r = 0; r < m; ++r) {
    float* cr = c + r * ldc;
    std::fill(cr, cr + n, 0.f);
    for (int64_t p = 0; p < k; ++p) {
      const float av = a[r * lda + p];
      const float* bp = b + p * ldb;
      for (int64_t j = 0; j < n; ++j) cr[j] += av * bp[j];
    }
    const float s = row_scale ? row_scale[r] : alpha;
    for (int64_t j = 0; j < n; ++j) cr[j] *= s;
  }
}

float exp_row(float* x, int64_t n, const float* mask) {
  if (mask) {
    for (int64_t j = 0; j < n; ++j) x[j] += mask[j];
  }
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, x[j]);
  if (std::isinf(mx) && mx < 0) mx = 0.f;  // all -inf: exp gives zeros, not NaN
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = std::exp(x[j] - mx);
    sum += x[j];
  }
  return static_cast<float>(sum);
}

}  // namespace

const Variant& scalar_variant() {
  static const Variant v{"infopt_f32_attention__scalar", Isa::Scalar, rows_gemm, exp_row};
  return v;
}

const std::vector<const Variant*>& variants() { return family_variants(scalar_variant(), INFOPT_AVX2_VARIANT()); }

const Variant& variant_for(Isa isa) { return family_variant_for(isa, scalar_variant(), INFOPT_AVX2_VARIANT()); }

}  // namespace attention
}  // namespace infopt
