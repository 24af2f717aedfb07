// Loops shared by the per-ISA elementwise files. Include inside a per-ISA
// namespace after <cmath> and elementwise.h; the file's compiler flags decide
// the vector width.

template <class F>
inline void binary_loop(const float* a, bool av, const float* b, bool bv, float* y, int64_t n, F f) {
  if (av && bv) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  } else if (av) {
    const float s = b[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], s);
  } else if (bv) {
    const float s = a[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(s, b[i]);
  } else {
    const float r = f(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) y[i] = r;
  }
}

inline void binary_f32(infopt::ew::BinaryOp op, const float* a, bool av, const float* b, bool bv, float* y,
                       int64_t n) {
  using infopt::ew::BinaryOp;
  switch (op) {
    case BinaryOp::Add: return binary_loop(a, av, b, bv, y, n, [](float p, float q) { return p + q; });
    case BinaryOp::Sub: return binary_loop(a, av, b, bv, y, n, [](float p, float q) { return p - q; });
    case BinaryOp::Mul: return binary_loop(a, av, b, bv, y, n, [](float p, float q) { return p * q; });
    case BinaryOp::Div: return binary_loop(a, av, b, bv, y, n, [](float p, float q) { return p / q; });
    case BinaryOp::Pow:
      // x^2 and x^3 (GELU's tanh form) are plain products: vectorised and within 1 ulp of pow.
      if (av && !bv && b[0] == 2.f) return binary_loop(a, av, b, bv, y, n, [](float p, float) { return p * p; });
      if (av && !bv && b[0] == 3.f) return binary_loop(a, av, b, bv, y, n, [](float p, float) { return p * p * p; });
      return binary_loop(a, av, b, bv, y, n, [](float p, float q) { return std::pow(p, q); });
    // NaN in either operand propagates, as in numpy.maximum / ONNX Max.
    case BinaryOp::Max:
      return binary_loop(a, av, b, bv, y, n, [](float p, float q) { return (p != p || p > q) ? p : q; });
    case BinaryOp::Min:
      return binary_loop(a, av, b, bv, y, n, [](float p, float q) { return (p != p || p < q) ? p : q; });
  }
}

template <class F>
inline void unary_loop(const float* x, float* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

inline void unary_f32(infopt::ew::UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  using infopt::ew::UnaryOp;
  switch (op) {
    case UnaryOp::Relu: return unary_loop(x, y, n, [](float v) { return v < 0.f ? 0.f : v; });
    case UnaryOp::Sigmoid: return unary_loop(x, y, n, [](float v) { return 1.f / (1.f + std::exp(-v)); });
    case UnaryOp::Tanh: return unary_loop(x, y, n, [](float v) { return std::tanh(v); });
    case UnaryOp::LeakyRelu: return unary_loop(x, y, n, [p0](float v) { return v < 0.f ? v * p0 : v; });
    case UnaryOp::Clip:  // min then max, so min > max gives max everywhere (as ONNX specifies)
      return unary_loop(x, y, n, [p0, p1](float v) {
        const float t = v < p0 ? p0 : v;
        return t > p1 ? p1 : t;
      });
    case UnaryOp::Exp: return unary_loop(x, y, n, [](float v) { return std::exp(v); });
    case UnaryOp::Log: return unary_loop(x, y, n, [](float v) { return std::log(v); });
    case UnaryOp::Sqrt: return unary_loop(x, y, n, [](float v) { return std::sqrt(v); });
    case UnaryOp::Neg: return unary_loop(x, y, n, [](float v) { return -v; });
    case UnaryOp::Abs: return unary_loop(x, y, n, [](float v) { return std::fabs(v); });
    case UnaryOp::Erf: return unary_loop(x, y, n, [](float v) { return std::erf(v); });
    case UnaryOp::Reciprocal: return unary_loop(x, y, n, [](float v) { return 1.f / v; });
    case UnaryOp::HardSigmoid:
      return unary_loop(x, y, n, [p0, p1](float v) {
        const float t = p0 * v + p1;
        return t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
      });
    case UnaryOp::HardSwish:
      return unary_loop(x, y, n, [](float v) {
        const float t = v * (1.f / 6.f) + 0.5f;
        return v * (t < 0.f ? 0.f : (t > 1.f ? 1.f : t));
      });
    case UnaryOp::Floor: return unary_loop(x, y, n, [](float v) { return std::floor(v); });
    case UnaryOp::Ceil: return unary_loop(x, y, n, [](float v) { return std::ceil(v); });
    case UnaryOp::Gelu:
      return unary_loop(x, y, n, [](float v) { return 0.5f * v * (1.f + std::erf(v * 0.70710678118654752f)); });
    case UnaryOp::GeluTanh:
      return unary_loop(x, y, n, [](float v) {
        return 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
      });
    case UnaryOp::Sign: return unary_loop(x, y, n, [](float v) { return v > 0.f ? 1.f : (v < 0.f ? -1.f : v); });
    case UnaryOp::Softplus:
      return unary_loop(x, y, n, [](float v) { return v > 20.f ? v : std::log1p(std::exp(v)); });
  }
}
