// Elementwise float32 kernels: one variant table (scalar / AVX2) used by the
// broadcasting ops in elementwise.cpp. Inner loops work on contiguous runs;
// a "vec" flag of false means the operand is a single broadcast scalar.
#pragma once
#include <cstdint>
#include <vector>

#include "cpu_features.h"

namespace infopt {
namespace ew {

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Max, Min };
enum class UnaryOp { Relu, Sigmoid, Tanh, LeakyRelu, Clip, Exp, Log, Sqrt, Neg, Abs, Erf, Reciprocal,
                     HardSigmoid, HardSwish, Floor, Ceil, Gelu, GeluTanh, Sign, Softplus };

struct Variant {
  const char* name;
  Isa isa;
  void (*binary)(BinaryOp op, const float* a, bool a_vec, const float* b, bool b_vec, float* y, int64_t n);
  void (*unary)(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1);
};

const std::vector<const Variant*>& variants();
const Variant& variant_for(Isa isa);

const Variant& scalar_variant();
#if defined(INFOPT_HAVE_AVX2)
const Variant& avx2_variant();
#endif

}  // namespace ew
}  // namespace infopt
