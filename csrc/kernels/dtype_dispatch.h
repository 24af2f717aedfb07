// Maps a runtime DType to a C++ type for templated kernels, and IEEE half
// conversions (round to nearest even) for Cast.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "runtime/tensor.h"

namespace infopt {

struct Half {
  uint16_t bits;
};

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t f;
  if (exp == 0) {
    if (man == 0) {
      f = sign;
    } else {  // subnormal half: value = man * 2^-24, exact in float
      float v = static_cast<float>(man) * 5.9604644775390625e-8f;
      std::memcpy(&f, &v, 4);
      f |= sign;
    }
  } else if (exp == 31) {
    f = sign | 0x7f800000u | (man << 13);
  } else {
    f = sign | ((exp + 112) << 23) | (man << 13);
  }
  float out;
  std::memcpy(&out, &f, 4);
  return out;
}

inline uint16_t float_to_half(float v) {
  uint32_t f;
  std::memcpy(&f, &v, 4);
  const uint16_t sign = static_cast<uint16_t>((f >> 16) & 0x8000u);
  const uint32_t abs = f & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {  // result is subnormal (or zero): round abs * 2^24 to an integer
    float a;
    std::memcpy(&a, &abs, 4);
    const float scaled = a * 16777216.f;  // exact: power-of-two scaling of a small float
    const float r = std::nearbyint(scaled);  // ties to even under the default rounding mode
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
  }
  // normal: rebias the exponent, round 13 dropped mantissa bits to nearest even
  uint32_t h = ((abs >> 13) - (112u << 10));
  const uint32_t rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

// Calls f(T{}) with T the C++ type of `dt` (Half for float16); throws for
// anything else, naming `what`.
template <class F>
auto dispatch_dtype(DType dt, const std::string& what, F&& f) {
  switch (dt) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int64: return f(int64_t{});
    case DType::Int32: return f(int32_t{});
    case DType::Int16: return f(int16_t{});
    case DType::Int8: return f(int8_t{});
    case DType::UInt64: return f(uint64_t{});
    case DType::UInt32: return f(uint32_t{});
    case DType::UInt16: return f(uint16_t{});
    case DType::UInt8: return f(uint8_t{});
    case DType::Bool: return f(bool{});
    case DType::Float16: return f(Half{});
    default: break;
  }
  throw std::invalid_argument(what + ": unsupported dtype " + dtype_name(dt));
}

// Numeric value of one element as double / as int64 (Half decoded).
template <class T>
inline double to_double(T v) { return static_cast<double>(v); }
template <>
inline double to_double<Half>(Half v) { return static_cast<double>(half_to_float(v.bits)); }

}  // namespace infopt
