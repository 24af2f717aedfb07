// The variant table every kernel family keeps: its scalar variant first, then the AVX2 one when
// the build has it. One definition so that dispatch, tests and benchmarks agree for all families.
#pragma once
#include <vector>

#include "cpu_features.h"

namespace infopt {

template <class T>
struct NonDeduced {
  using type = T;
};

// `avx2` is nullptr when the build has no AVX2 variant (INFOPT_AVX2_VARIANT gives it).
template <class Variant>
const std::vector<const Variant*>& family_variants(const Variant& scalar,
                                                   typename NonDeduced<const Variant*>::type avx2) {
  static const std::vector<const Variant*> table = [&] {
    std::vector<const Variant*> t{&scalar};
    if (avx2 != nullptr) t.push_back(avx2);
    return t;
  }();
  return table;
}

template <class Variant>
const Variant& family_variant_for(Isa isa, const Variant& scalar,
                                  typename NonDeduced<const Variant*>::type avx2) {
  return isa == Isa::Avx2 && avx2 != nullptr ? *avx2 : scalar;
}

}  // namespace infopt

// The family's avx2_variant(), or nullptr in a build without AVX2 code.
#if defined(INFOPT_HAVE_AVX2)
#define INFOPT_AVX2_VARIANT() (&avx2_variant())
#else
#define INFOPT_AVX2_VARIANT() nullptr
#endif
