#include <cmath>

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
  static const std::vector<const Variant*> table = [] {
    std::vector<const Variant*> t{&scalar_variant()};
#if defined(INFOPT_HAVE_AVX2)
    t.push_back(&avx2_variant());
#endif
    return t;
  }();
  return table;
}

const Variant& variant_for(Isa isa) {
#if defined(INFOPT_HAVE_AVX2)
  if (isa == Isa::Avx2) return avx2_variant();
#endif
  return scalar_variant();
}

}  // namespace ew
}  // namespace infopt
