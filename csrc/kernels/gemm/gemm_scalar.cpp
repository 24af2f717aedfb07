// Portable 4x8 micro-kernel: plain C++ the compiler maps to baseline SSE2.
#include <cstring>

#include <cmath>

#include "kernels/gemm/gemm.h"

namespace infopt {
namespace gemm {
namespace isa_scalar {
#include "kernels/gemm/epilogue_impl.h"

constexpr int MR = 4, NR = 8;

void ukernel_4x8(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
    b += NR;
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    if (accumulate) {
      for (int j = 0; j < NR; ++j) ci[j] += acc[i][j];
    } else {
      for (int j = 0; j < NR; ++j) ci[j] = acc[i][j];
    }
  }
}

}  // namespace isa_scalar

const Variant& scalar_variant() {
  static const Variant v{"infopt_f32_gemm__scalar_4x8", Isa::Scalar, isa_scalar::MR, isa_scalar::NR,
                         isa_scalar::ukernel_4x8, isa_scalar::apply_epilogue, isa_scalar::apply_activation, nullptr};
  return v;
}

}  // namespace gemm
}  // namespace infopt
