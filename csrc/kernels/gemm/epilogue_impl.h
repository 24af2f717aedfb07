// Epilogue and activation loops, compiled once per ISA: include inside a
// per-ISA namespace so the baseline and AVX2 copies never merge at link time.
// Plain loops on purpose; the compiler vectorises them with the file's flags.
// The including file must include <cmath> and kernels/gemm/gemm.h first; AVX2
// files define INFOPT_GEMM_VMATH and include vmath_avx2.h for the polynomial
// sigmoid / tanh / GELU.

inline float act_sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

inline void apply_activation(float* x, int64_t n, const infopt::gemm::Activation& act) {
  using infopt::gemm::Act;
  const float p0 = act.p0, p1 = act.p1;
  switch (act.kind) {
    case Act::None:
      return;
    case Act::Relu:
      for (int64_t j = 0; j < n; ++j) x[j] = x[j] < 0.f ? 0.f : x[j];
      return;
    case Act::LeakyRelu:
      for (int64_t j = 0; j < n; ++j) x[j] = x[j] < 0.f ? x[j] * p0 : x[j];
      return;
    case Act::Clip:
      for (int64_t j = 0; j < n; ++j) {  // min then max: min > max gives max (ONNX)
        const float t = x[j] < p0 ? p0 : x[j];
        x[j] = t > p1 ? p1 : t;
      }
      return;
#if defined(INFOPT_GEMM_VMATH)
    case Act::Sigmoid: return infopt::vmath::map8(x, x, n, infopt::vmath::sigmoid8);
    case Act::Tanh: return infopt::vmath::map8(x, x, n, infopt::vmath::tanh8);
    case Act::Gelu: return infopt::vmath::map8(x, x, n, infopt::vmath::gelu8);
    case Act::GeluTanh: return infopt::vmath::map8(x, x, n, infopt::vmath::gelu_tanh8);
#else
    case Act::Sigmoid:
      for (int64_t j = 0; j < n; ++j) x[j] = act_sigmoid(x[j]);
      return;
    case Act::Tanh:
      for (int64_t j = 0; j < n; ++j) x[j] = std::tanh(x[j]);
      return;
    case Act::Gelu:
      for (int64_t j = 0; j < n; ++j) x[j] = 0.5f * x[j] * (1.f + std::erf(x[j] * 0.70710678118654752f));
      return;
    case Act::GeluTanh:
      for (int64_t j = 0; j < n; ++j) {
        const float v = x[j];
        x[j] = 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
      }
      return;
#endif
    case Act::HardSigmoid:
      for (int64_t j = 0; j < n; ++j) {
        float v = p0 * x[j] + p1;
        x[j] = v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
      }
      return;
    case Act::HardSwish:
      for (int64_t j = 0; j < n; ++j) {
        float v = x[j] * (1.f / 6.f) + 0.5f;
        v = v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
        x[j] = x[j] * v;
      }
      return;
  }
}

inline void apply_epilogue(float* c, int64_t ldc, int64_t m, int64_t n, int64_t i0, int64_t j0,
                           const infopt::gemm::Epilogue& ep) {
  const auto& b = ep.bias;
  const auto& r = ep.residual;
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (ep.alpha != 1.f) {
      const float a = ep.alpha;
      for (int64_t j = 0; j < n; ++j) row[j] *= a;
    }
    if (b.ptr) {
      const float* bp = b.ptr + (i0 + i) * b.rs + j0 * b.cs;
      const float s = b.scale;
      if (b.cs == 0) {
        const float v = s * bp[0];
        for (int64_t j = 0; j < n; ++j) row[j] += v;
      } else if (b.cs == 1) {
        for (int64_t j = 0; j < n; ++j) row[j] += s * bp[j];
      } else {
        for (int64_t j = 0; j < n; ++j) row[j] += s * bp[j * b.cs];
      }
    }
    if (r.ptr) {
      const float* rp = r.ptr + (i0 + i) * r.rs + j0 * r.cs;
      if (r.cs == 1) {
        for (int64_t j = 0; j < n; ++j) row[j] += rp[j];
      } else {
        for (int64_t j = 0; j < n; ++j) row[j] += rp[j * r.cs];
      }
    }
    apply_activation(row, n, ep.act);
  }
}
