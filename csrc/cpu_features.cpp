#include "cpu_features.h"

#include <cstdlib>
#include <stdexcept>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace infopt {
namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool fma = ecx & (1u << 12);
  const bool osxsave = ecx & (1u << 27);
  const bool avx = ecx & (1u << 28);
  if (!(fma && osxsave && avx)) return f;
  // The OS must save XMM and YMM state on context switches (XCR0 bits 1, 2),
  // otherwise executing AVX instructions faults even when CPUID reports them.
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 0x6u) != 0x6u) return f;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
  f.avx2_fma = ebx & (1u << 5);
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return true;
    case Isa::Avx2:
#if defined(INFOPT_HAVE_AVX2)
      return cpu_features().avx2_fma;
#else
      return false;
#endif
  }
  return false;
}

Isa parse_isa(const std::string& name) {
  Isa isa;
  if (name == "scalar") {
    isa = Isa::Scalar;
  } else if (name == "avx2") {
    isa = Isa::Avx2;
  } else {
    throw std::invalid_argument("unknown CPU ISA '" + name + "' (expected 'scalar' or 'avx2')");
  }
  if (!isa_supported(isa)) {
    throw std::invalid_argument("CPU ISA '" + name + "' requested but this CPU (or build) does not support it");
  }
  return isa;
}

const char* isa_name(Isa isa) { return isa == Isa::Avx2 ? "avx2" : "scalar"; }

Isa default_isa() {
  // Not cached: parse errors must surface on every call, and getenv is cheap
  // next to building a Program.
  const char* env = std::getenv("INFOPT_CPU_ISA");
  if (env && *env) return parse_isa(env);
  return isa_supported(Isa::Avx2) ? Isa::Avx2 : Isa::Scalar;
}

}  // namespace infopt
