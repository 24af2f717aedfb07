// Inner kernels of infopt.Attention, one variant per ISA. The driver
// (attention.cpp) splits the work into (batch entry, block of query rows)
// tasks; per task it computes S = scale * Q K^T for the block, turns each row
// of S into unnormalised exponentials, and forms Y = diag(1 / rowsum) P V.
// Both products have the shape the row kernel below computes, so no operand
// is ever packed when K arrives transposed (kt=1), as the fused graphs give it.
#pragma once
#include <cstdint>
#include <vector>

#include "cpu_features.h"

namespace infopt {
namespace attention {

struct Variant {
  const char* name;
  Isa isa;
  // C[r*ldc + j] = scale_r * sum_p A[r*lda + p] * B[p*ldb + j] for r < m, j < n,
  // with scale_r = row_scale ? row_scale[r] : alpha. B's rows hold n contiguous
  // floats; nothing outside [0, n) of a row of B or C is read or written.
  void (*rows_gemm)(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                    float* c, int64_t ldc, float alpha, const float* row_scale);
  // x[j] = exp(x[j] + mask[j] - max) over n floats (mask may be null) and returns
  // the sum. The max is taken after the mask; an all -inf row gives zeros and 0.
  float (*exp_row)(float* x, int64_t n, const float* mask);
};

const std::vector<const Variant*>& variants();
const Variant& variant_for(Isa isa);
const Variant& scalar_variant();
#if defined(INFOPT_HAVE_AVX2)
const Variant& avx2_variant();
#endif

}  // namespace attention
}  // namespace infopt
