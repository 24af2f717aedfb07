// CPU feature detection and ISA selection for kernel dispatch.
#pragma once
#include <string>

namespace infopt {

enum class Isa { Scalar = 0, Avx2 = 1 };

struct CpuFeatures {
  bool avx2_fma = false;  // AVX2 + FMA present and YMM state enabled by the OS
};

// Detected once (CPUID + XGETBV), never changes afterwards.
const CpuFeatures& cpu_features();

// True when kernels for `isa` were compiled in and the CPU can run them.
bool isa_supported(Isa isa);

// "scalar" / "avx2" -> Isa; throws std::invalid_argument for an unknown name
// or for an ISA this CPU cannot run.
Isa parse_isa(const std::string& name);

const char* isa_name(Isa isa);

// Best supported ISA, or INFOPT_CPU_ISA when set (validated by parse_isa).
Isa default_isa();

}  // namespace infopt
