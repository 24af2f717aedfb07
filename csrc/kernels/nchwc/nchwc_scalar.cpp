// Portable NCHWc kernels (the reference the AVX2 variant is tested against) and the table.
#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/nchwc/nchwc.h"
#include "kernels/variant_table.h"

namespace infopt {
namespace nchwc {
namespace isa_scalar {
#include "kernels/nchwc/nchwc_impl.h"
#include "kernels/nchwc/nchwc_winograd_impl.h"

// One pixel at a time: all taps summed into nb*8 accumulators, then bias and residual; the
// activation runs over each block's stored row at the end.
void conv_run(const ConvRun& a) {
  const int nbw = a.nb * kLanes;
  for (int64_t o = a.q0; o < a.q1; ++o) {
    float acc[2 * kLanes] = {};
    const float* xo = a.x + o / a.ow * a.ohstride + o % a.ow * a.pstride;
    const float* w = a.w;
    const int64_t groups = a.full_groups + (a.rem_lanes ? 1 : 0);
    for (int64_t g = 0; g < groups; ++g) {
      const int lanes = g < a.full_groups ? kLanes : a.rem_lanes;
      for (int kh = 0; kh < a.kh; ++kh)
        for (int kw = 0; kw < a.kw; ++kw) {
          const float* xt = xo + g * a.gstride + kh * a.rowstep + kw * a.colstep;
          for (int l = 0; l < lanes; ++l) {
            const float xv = xt[l * a.lstride];
            for (int j = 0; j < nbw; ++j) acc[j] += xv * w[j];
            w += nbw;
          }
          w += (kLanes - lanes) * nbw;
        }
    }
    for (int b = 0; b < a.nb; ++b) {
      float* y = a.y + b * a.ystride + o * kLanes;
      const float* z = a.z ? a.z + b * a.ystride + o * kLanes : nullptr;
      for (int l = 0; l < kLanes; ++l) {
        float v = acc[b * kLanes + l];
        if (a.bias) v += a.bias[b * kLanes + l];
        if (z) v += z[l];
        y[l] = v;
      }
    }
  }
  if (a.act.kind != gemm::Act::None) {
    for (int b = 0; b < a.nb; ++b) a.act_fn(a.y + b * a.ystride + a.q0 * kLanes, (a.q1 - a.q0) * kLanes, a.act);
  }
}

// Affine over the plane, then the activation over what was stored, then the padded lanes zeroed
// (after the activation: Sigmoid(0) is not 0, and x may hold anything there).
void scale_shift(const float* x, int64_t n, const float* scale, const float* shift, int lanes,
                 const gemm::Activation& act, gemm::ActivationFn act_fn, float* y) {
  for (int64_t p = 0; p < n; ++p)
    for (int l = 0; l < kLanes; ++l) y[p * kLanes + l] = x[p * kLanes + l] * scale[l] + shift[l];
  if (act.kind != gemm::Act::None) act_fn(y, n * kLanes, act);
  if (lanes < kLanes)
    for (int64_t p = 0; p < n; ++p) std::fill(y + p * kLanes + lanes, y + (p + 1) * kLanes, 0.f);
}

}  // namespace isa_scalar

const Variant& scalar_variant() {
  static const Variant v{"infopt_f32_nchwc8__scalar", Isa::Scalar, isa_scalar::conv_run,
                         isa_scalar::reorder_to, isa_scalar::reorder_from, isa_scalar::maxpool_row,
                         isa_scalar::avgpool_row, isa_scalar::global_avgpool, isa_scalar::scale_shift,
                         {isa_scalar::wino_input<2>, isa_scalar::wino_input<4>},
                         {isa_scalar::wino_output<2>, isa_scalar::wino_output<4>}};
  return v;
}

const std::vector<const Variant*>& variants() { return family_variants(scalar_variant(), INFOPT_AVX2_VARIANT()); }

const Variant& variant_for(Isa isa) { return family_variant_for(isa, scalar_variant(), INFOPT_AVX2_VARIANT()); }

}  // namespace nchwc
}  // namespace infopt
