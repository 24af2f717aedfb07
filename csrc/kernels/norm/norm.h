// Row kernels of the normalisation family (Softmax / LogSoftmax over a
// contiguous row, LayerNormalization of one row, LRN over a run of positions),
// one variant per ISA.
#pragma once
#include <cstdint>
#include <vector>

#include "cpu_features.h"

namespace infopt {
namespace norm {

struct Variant {
  const char* name;
  Isa isa;
  // y = softmax(x) (or log_softmax) over n contiguous floats; y may alias x.
  void (*softmax_row)(const float* x, float* y, int64_t n, bool log);
  // y = (x - mean) / sqrt(var + eps) * scale + bias over n floats; scale and
  // bias may be null (1 and 0); mean / inv_std receive the statistics.
  void (*layernorm_row)(const float* x, float* y, int64_t n, const float* scale, const float* bias, float eps,
                        float* mean, float* inv_std);
  // LRN of n positions of one channel: y[i] = x[i] * (bias + scale * sum_w win[w][i]^2)^-beta,
  // win the nwin channels of its window (x among them).
  void (*lrn_run)(const float* const* win, int nwin, const float* x, float* y, int64_t n, float bias, float scale,
                  float beta);
};

const std::vector<const Variant*>& variants();
const Variant& variant_for(Isa isa);
const Variant& scalar_variant();
#if defined(INFOPT_HAVE_AVX2)
const Variant& avx2_variant();
#endif

}  // namespace norm
}  // namespace infopt
