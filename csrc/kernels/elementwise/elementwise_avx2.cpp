// AVX2/FMA elementwise variant. Arithmetic ops reuse the shared loops (the
// compiler emits 256-bit code under this file's flags); transcendental ops
// use the polynomial approximations of vmath_avx2.h instead of libm calls.
#include <cmath>

#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/vmath_avx2.h"

namespace infopt {
namespace ew {
namespace isa_avx2 {
#include "kernels/elementwise/elementwise_impl.h"

void unary_vec(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  switch (op) {
    case UnaryOp::Exp: return vmath::map8(x, y, n, vmath::exp8);
    case UnaryOp::Sigmoid: return vmath::map8(x, y, n, vmath::sigmoid8);
    case UnaryOp::Tanh: return vmath::map8(x, y, n, vmath::tanh8);
    case UnaryOp::Erf: return vmath::map8(x, y, n, vmath::erf8);
    case UnaryOp::Gelu: return vmath::map8(x, y, n, vmath::gelu8);
    case UnaryOp::GeluTanh: return vmath::map8(x, y, n, vmath::gelu_tanh8);
    default: return unary_f32(op, x, y, n, p0, p1);
  }
}
}  // namespace isa_avx2

const Variant& avx2_variant() {
  static const Variant v{"infopt_f32_elementwise__avx2", Isa::Avx2, isa_avx2::binary_f32, isa_avx2::unary_vec};
  return v;
}

}  // namespace ew
}  // namespace infopt
