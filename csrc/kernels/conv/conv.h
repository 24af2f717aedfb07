// Conv family variants: the depthwise plane kernel per ISA (the im2col and
// 1x1 paths go through the GEMM family's table).
#pragma once
#include <vector>

#include "cpu_features.h"
#include "kernels/conv/conv_geometry.h"

namespace infopt {
namespace conv {

// One output plane of a depthwise conv: one input channel plane x, its filter
// w (k[0]*k[1]*k[2] taps), writes the g.out_size() outputs to y.
using DepthwiseFn = void (*)(const float* x, const float* w, const Geometry& g, float* y);

struct Variant {
  const char* name;
  Isa isa;
  DepthwiseFn depthwise_plane;
};

// Zero-padded copy of one input plane: (in + pb + pe) per axis plus slack so
// vector loads may run past the last row. Returns thread-local scratch.
float* padded_plane(const float* x, const Geometry& g, int64_t& pd, int64_t& ph, int64_t& pw);

void depthwise_plane_generic(const float* x, const float* w, const Geometry& g, float* y);

const std::vector<const Variant*>& variants();
const Variant& variant_for(Isa isa);
const Variant& scalar_variant();
#if defined(INFOPT_HAVE_AVX2)
const Variant& avx2_variant();
#endif

}  // namespace conv
}  // namespace infopt
