// Portable depthwise plane kernel and the conv variant table.
#include <algorithm>
#include <cstring>

#include "kernels/variant_table.h"
#include "kernels/conv/conv.h"
#include "runtime/tensor.h"

namespace infopt {
namespace conv {

constexpr int64_t kSlack = 64;  // floats past the padded plane that vector loads may touch

float* padded_plane(const float* x, const Geometry& g, int64_t& pd, int64_t& ph, int64_t& pw) {
  pd = g.in[0] + g.pb[0] + g.pe[0];
  ph = g.in[1] + g.pb[1] + g.pe[1];
  pw = g.in[2] + g.pb[2] + g.pe[2];
  const int64_t n = pd * ph * pw;
  float* xp = scratch_floats(3, static_cast<size_t>(n + kSlack));
  std::fill(xp, xp + n + kSlack, 0.f);
  for (int64_t z = 0; z < g.in[0]; ++z)
    for (int64_t r = 0; r < g.in[1]; ++r) {
      std::memcpy(xp + ((z + g.pb[0]) * ph + r + g.pb[1]) * pw + g.pb[2], x + (z * g.in[1] + r) * g.in[2],
                  sizeof(float) * static_cast<size_t>(g.in[2]));
    }
  return xp;
}

// The input plane is first copied into a zero-padded scratch so the inner
// loops carry no bounds checks and run contiguously when stride is 1.
void depthwise_plane_generic(const float* x, const float* w, const Geometry& g, float* y) {
  int64_t pd, ph, pw;
  const float* xp = padded_plane(x, g, pd, ph, pw);
  const int64_t ow = g.out[2], sx = g.s[2];
  for (int64_t oz = 0; oz < g.out[0]; ++oz)
    for (int64_t oy = 0; oy < g.out[1]; ++oy) {
      float* yr = y + (oz * g.out[1] + oy) * ow;
      std::fill(yr, yr + ow, 0.f);
      for (int64_t kz = 0; kz < g.k[0]; ++kz)
        for (int64_t ky = 0; ky < g.k[1]; ++ky) {
          const float* xr = xp + ((oz * g.s[0] + kz * g.d[0]) * ph + oy * g.s[1] + ky * g.d[1]) * pw;
          const float* wr = w + (kz * g.k[1] + ky) * g.k[2];
          for (int64_t kx = 0; kx < g.k[2]; ++kx) {
            const float wv = wr[kx];
            const float* xs = xr + kx * g.d[2];
            if (sx == 1) {
              for (int64_t o = 0; o < ow; ++o) yr[o] += wv * xs[o];
            } else {
              for (int64_t o = 0; o < ow; ++o) yr[o] += wv * xs[o * sx];
            }
          }
        }
    }
}

const Variant& scalar_variant() {
  static const Variant v{"infopt_f32_depthwise__scalar", Isa::Scalar, depthwise_plane_generic};
  return v;
}

const std::vector<const Variant*>& variants() {
  return family_variants(scalar_variant(), INFOPT_AVX2_VARIANT());
}

const Variant& variant_for(Isa isa) {
  return family_variant_for(isa, scalar_variant(), INFOPT_AVX2_VARIANT());
}

}  // namespace conv
}  // namespace infopt
