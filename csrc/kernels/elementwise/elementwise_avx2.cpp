// Same loops as the scalar file, compiled with -mavx2 -mfma so the compiler
// emits 256-bit code for the arithmetic ops.
#include <cmath>

#include "kernels/elementwise/elementwise.h"

namespace infopt {
namespace ew {
namespace isa_avx2 {
#include "kernels/elementwise/elementwise_impl.h"
}

const Variant& avx2_variant() {
  static const Variant v{"infopt_f32_elementwise__avx2", Isa::Avx2, isa_avx2::binary_f32, isa_avx2::unary_f32};
  return v;
}

}  // namespace ew
}  // namespace infopt
