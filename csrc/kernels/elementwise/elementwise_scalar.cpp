#include <cmath>

#include "kernels/variant_table.h"
#include "kernels/elementwise/elementwise.h"

namespace infopt {
namespace ew {
namespace isa_scalar {
#include "kernels/elementwise/elementwise_impl.h"
}

const Variant& scalar_variant() {
  static const Variant v{"infopt_f32_elementwise__scalar", Isa::Scalar, isa_scalar::binary_f32, isa_scalar::unary_f32};
  return v;
}

const std::vector<const Variant*>& variants() {
  return family_variants(scalar_variant(), INFOPT_AVX2_VARIANT());
}

const Variant& variant_for(Isa isa) {
  return family_variant_for(isa, scalar_variant(), INFOPT_AVX2_VARIANT());
}

}  // namespace ew
}  // namespace infopt
