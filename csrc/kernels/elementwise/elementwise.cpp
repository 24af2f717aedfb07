// Broadcasting elementwise ops. Shapes are collapsed so the inner loop is a
// contiguous run in every operand (or a broadcast scalar), then rows are
// spread over the thread pool.
#include "kernels/elementwise/elementwise.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "kernels/broadcast.h"
#include "kernels/dtype_dispatch.h"
#include "kernels/kernel.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace {

using ew::BinaryOp;
using ew::UnaryOp;

constexpr int64_t kGrain = 16384;  // elements per task: below this threading costs more than it saves

// Calls row(y_off, a_off, b_off, n, a_vec, b_vec) over the broadcast of a and
// b to `out` (both inputs must broadcast to `out`).
template <class Row>
void broadcast_rows(const Shape& out, const Shape& as, const Shape& bs, ThreadPool* pool, Row row) {
  const int64_t total = shape_numel(out);
  if (total == 0) return;
  std::vector<int64_t> sa = broadcast_strides(as, out), sb = broadcast_strides(bs, out);
  // Collapse dims from the right while both operands stay "contiguous-compatible".
  std::vector<int64_t> dims, ra, rb;
  for (size_t k = out.size(); k-- > 0;) {
    if (out[k] == 1) continue;
    if (!dims.empty() && sa[k] == ra.back() * dims.back() && sb[k] == rb.back() * dims.back()) {
      dims.back() *= out[k];
      continue;
    }
    dims.push_back(out[k]);
    ra.push_back(sa[k]);
    rb.push_back(sb[k]);
  }
  if (dims.empty()) dims = {1}, ra = {0}, rb = {0};
  // dims are innermost-first now.
  const int64_t n = dims[0];
  const bool av = ra[0] != 0, bv = rb[0] != 0;
  const int64_t rows = total / n;
  auto run_rows = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rem = r, oa = 0, ob = 0;
      for (size_t d = 1; d < dims.size(); ++d) {
        const int64_t i = rem % dims[d];
        rem /= dims[d];
        oa += i * ra[d];
        ob += i * rb[d];
      }
      row(r * n + c0, oa + (av ? c0 : 0), ob + (bv ? c0 : 0), c1 - c0, av, bv);
    }
  };
  if (!pool || total < 2 * kGrain) {
    run_rows(0, rows, 0, n);
  } else if (rows == 1) {
    pool->parallel_for(n, kGrain, [&](int64_t c0, int64_t c1) { run_rows(0, 1, c0, c1); });
  } else {
    pool->parallel_for(rows, std::max<int64_t>(1, kGrain / n), [&](int64_t r0, int64_t r1) { run_rows(r0, r1, 0, n); });
  }
}

template <class T>
T int_binary(BinaryOp op, T p, T q) {
  switch (op) {
    case BinaryOp::Add: return static_cast<T>(p + q);
    case BinaryOp::Sub: return static_cast<T>(p - q);
    case BinaryOp::Mul: return static_cast<T>(p * q);
    case BinaryOp::Div:
      if (q == 0) throw std::invalid_argument("integer division by zero");
      return static_cast<T>(p / q);
    case BinaryOp::Max: return p > q ? p : q;
    case BinaryOp::Min: return p < q ? p : q;
    case BinaryOp::Pow: {
      T r = 1;
      for (T e = 0; e < q; ++e) r = static_cast<T>(r * p);
      return r;
    }
  }
  return 0;
}

// y = a op b with y of shape `out` (a or b may alias y when it already has that shape).
void binary_into(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y, StepIO& io) {
  if (a.dtype != b.dtype) throw std::invalid_argument("operand dtypes differ: " + a.desc() + " vs " + b.desc());
  switch (a.dtype) {
    case DType::Float32: {
      const auto& v = ew::variant_for(io.isa());
      const float* ap = a.ptr<float>();
      const float* bp = b.ptr<float>();
      float* yp = y.ptr<float>();
      broadcast_rows(y.shape, a.shape, b.shape, io.pool(), [&](int64_t yo, int64_t ao, int64_t bo, int64_t n, bool av, bool bv) {
        v.binary(op, ap + ao, av, bp + bo, bv, yp + yo, n);
      });
      return;
    }
    case DType::Float64: {
      const double* ap = a.ptr<double>();
      const double* bp = b.ptr<double>();
      double* yp = y.ptr<double>();
      broadcast_rows(y.shape, a.shape, b.shape, io.pool(), [&](int64_t yo, int64_t ao, int64_t bo, int64_t n, bool av, bool bv) {
        for (int64_t i = 0; i < n; ++i) {
          const double p = ap[ao + (av ? i : 0)], q = bp[bo + (bv ? i : 0)];
          double r = 0;
          switch (op) {
            case BinaryOp::Add: r = p + q; break;
            case BinaryOp::Sub: r = p - q; break;
            case BinaryOp::Mul: r = p * q; break;
            case BinaryOp::Div: r = p / q; break;
            case BinaryOp::Pow: r = std::pow(p, q); break;
            case BinaryOp::Max: r = (p != p || p > q) ? p : q; break;
            case BinaryOp::Min: r = (p != p || p < q) ? p : q; break;
          }
          yp[yo + i] = r;
        }
      });
      return;
    }
    case DType::Int64:
    case DType::Int32: {
      auto go = [&](auto tag) {
        using T = decltype(tag);
        const T* ap = a.ptr<T>();
        const T* bp = b.ptr<T>();
        T* yp = y.ptr<T>();
        broadcast_rows(y.shape, a.shape, b.shape, io.pool(), [&](int64_t yo, int64_t ao, int64_t bo, int64_t n, bool av, bool bv) {
          for (int64_t i = 0; i < n; ++i) yp[yo + i] = int_binary<T>(op, ap[ao + (av ? i : 0)], bp[bo + (bv ? i : 0)]);
        });
      };
      if (a.dtype == DType::Int64) go(int64_t{}); else go(int32_t{});
      return;
    }
    default:
      throw std::invalid_argument("unsupported dtype " + a.desc());
  }
}

class BinaryKernel : public Kernel {
 public:
  BinaryKernel(const Attrs& a, BinaryOp op) : op_(op) { a.allow({}); }
  std::vector<int> inplace_inputs() const override { return {0, 1}; }
  void run(StepIO& io) const override {
    const Tensor& a = require_input(io, 0, "A");
    const Tensor& b = require_input(io, 1, "B");
    const Shape out = broadcast_shapes(a.shape, b.shape);
    if (a.dtype != b.dtype) throw std::invalid_argument("operand dtypes differ: " + a.desc() + " vs " + b.desc());
    Tensor& y = io.output(0, a.dtype, out);
    binary_into(op_, a, b, y, io);
  }
 private:
  BinaryOp op_;
};

// Sum / Max / Min / Mean over any number of inputs, folded pairwise into y.
class VariadicKernel : public Kernel {
 public:
  VariadicKernel(const Attrs& a, BinaryOp op, bool mean) : op_(op), mean_(mean) { a.allow({}); }
  void run(StepIO& io) const override {
    const Tensor& first = require_input(io, 0, "data_0");
    Shape out = first.shape;
    for (int i = 1; i < io.num_inputs(); ++i) out = broadcast_shapes(out, require_input(io, i, "data").shape);
    Tensor& y = io.output(0, first.dtype, out);
    if (io.num_inputs() == 1) {
      std::memcpy(y.data, first.data, y.nbytes());
    } else {
      binary_into(op_, first, *io.input(1), y, io);
      for (int i = 2; i < io.num_inputs(); ++i) binary_into(op_, y, *io.input(i), y, io);
    }
    if (mean_) {
      if (y.dtype != DType::Float32) throw std::invalid_argument("Mean supports float32 only, got " + y.desc());
      const float s = 1.f / static_cast<float>(io.num_inputs());
      float* p = y.ptr<float>();
      for (int64_t i = 0; i < y.numel(); ++i) p[i] *= s;
    }
  }
 private:
  BinaryOp op_;
  bool mean_;
};

class UnaryKernel : public Kernel {
 public:
  std::vector<int> inplace_inputs() const override { return {0}; }
  UnaryKernel(const Attrs& a, UnaryOp op) : op_(op) {
    switch (op) {
      case UnaryOp::LeakyRelu:
        a.allow({"alpha"});
        p0_ = static_cast<float>(a.get_float("alpha", 0.01));
        break;
      case UnaryOp::Clip:
        a.allow({"min", "max"});
        p0_ = static_cast<float>(a.get_float("min", -std::numeric_limits<double>::infinity()));
        p1_ = static_cast<float>(a.get_float("max", std::numeric_limits<double>::infinity()));
        break;
      case UnaryOp::Gelu: {
        a.allow({"approximate"});
        const std::string ap = a.get_str("approximate", "none");
        if (ap == "tanh") op_ = UnaryOp::GeluTanh;
        else if (ap != "none") a.fail("approximate", "must be 'none' or 'tanh', got '" + ap + "'");
        break;
      }
      case UnaryOp::HardSigmoid:
        a.allow({"alpha", "beta"});
        p0_ = static_cast<float>(a.get_float("alpha", 0.2));
        p1_ = static_cast<float>(a.get_float("beta", 0.5));
        break;
      default:
        a.allow({});
    }
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_f32(io, 0, "X");
    float lo = p0_, hi = p1_;
    if (op_ == UnaryOp::Clip) {  // opset-11+ form: optional scalar min/max inputs
      if (const Tensor* t = io.input(1)) lo = scalar_of(*t, "min");
      if (const Tensor* t = io.input(2)) hi = scalar_of(*t, "max");
    }
    Tensor& y = io.output(0, DType::Float32, x.shape);
    const auto& v = ew::variant_for(io.isa());
    const float* xp = x.ptr<float>();
    float* yp = y.ptr<float>();
    const int64_t n = x.numel();
    const int64_t grain = (op_ == UnaryOp::Relu || op_ == UnaryOp::Neg || op_ == UnaryOp::Abs) ? 4 * kGrain : kGrain / 4;
    io.pool()->parallel_for(n, grain, [&](int64_t b, int64_t e) { v.unary(op_, xp + b, yp + b, e - b, lo, hi); });
  }
 private:
  static float scalar_of(const Tensor& t, const char* name) {
    if (t.dtype != DType::Float32 || t.numel() != 1) {
      throw std::invalid_argument(std::string("Clip ") + name + " must be a float32 scalar, got " + t.desc());
    }
    return *t.ptr<float>();
  }
  UnaryOp op_;
  float p0_ = 0.f, p1_ = 0.f;
};

template <BinaryOp op>
std::unique_ptr<Kernel> make_binary(const Attrs& a, int, int) { return std::make_unique<BinaryKernel>(a, op); }
template <BinaryOp op, bool mean>
std::unique_ptr<Kernel> make_variadic(const Attrs& a, int, int) { return std::make_unique<VariadicKernel>(a, op, mean); }
template <UnaryOp op>
std::unique_ptr<Kernel> make_unary(const Attrs& a, int, int) { return std::make_unique<UnaryKernel>(a, op); }

// ---------------------------------------------------------------- comparisons, logic, Where, Cast

enum class Cmp { Equal, Less, Greater, LessEq, GreaterEq, And, Or, Xor };

template <class T>
inline bool compare(Cmp op, T p, T q) {
  switch (op) {
    case Cmp::Equal: return p == q;
    case Cmp::Less: return p < q;
    case Cmp::Greater: return p > q;
    case Cmp::LessEq: return p <= q;
    case Cmp::GreaterEq: return p >= q;
    case Cmp::And: return p && q;
    case Cmp::Or: return p || q;
    case Cmp::Xor: return static_cast<bool>(p) != static_cast<bool>(q);
  }
  return false;
}

// Equal / Less / Greater / LessOrEqual / GreaterOrEqual (any numeric dtype or
// bool for Equal) and And / Or / Xor (bool): broadcasting, bool output.
class CompareKernel : public Kernel {
 public:
  CompareKernel(const Attrs& a, Cmp op) : op_(op) { a.allow({}); }
  void run(StepIO& io) const override {
    const Tensor& a = require_input(io, 0, "A");
    const Tensor& b = require_input(io, 1, "B");
    if (a.dtype != b.dtype) throw std::invalid_argument("operand dtypes differ: " + a.desc() + " vs " + b.desc());
    const bool logical = op_ == Cmp::And || op_ == Cmp::Or || op_ == Cmp::Xor;
    if (logical && a.dtype != DType::Bool) throw std::invalid_argument("logical op needs bool inputs, got " + a.desc());
    const Shape out = broadcast_shapes(a.shape, b.shape);
    Tensor& y = io.output(0, DType::Bool, out);
    bool* yp = y.ptr<bool>();
    dispatch_dtype(a.dtype, "compare", [&](auto tag) {
      using T = decltype(tag);
      const T* ap = a.ptr<T>();
      const T* bp = b.ptr<T>();
      const Cmp op = op_;
      broadcast_walk<2>(out, {&a.shape, &b.shape}, io.pool(), kGrain,
                        [&](int64_t yo, const std::array<int64_t, 2>& o, int64_t n, const std::array<bool, 2>& v) {
                          const T* pa = ap + o[0];
                          const T* pb = bp + o[1];
                          for (int64_t i = 0; i < n; ++i) {
                            if constexpr (std::is_same_v<T, Half>) {
                              yp[yo + i] = compare(op, half_to_float(pa[v[0] ? i : 0].bits), half_to_float(pb[v[1] ? i : 0].bits));
                            } else {
                              yp[yo + i] = compare(op, pa[v[0] ? i : 0], pb[v[1] ? i : 0]);
                            }
                          }
                        });
    });
  }
 private:
  Cmp op_;
};

// Not (bool), IsNaN / IsInf (float32): bool output.
class PredicateKernel : public Kernel {
 public:
  PredicateKernel(const Attrs& a, int kind) : kind_(kind) {
    if (kind == 2) {
      a.allow({"detect_negative", "detect_positive"});
      neg_ = a.get_int("detect_negative", 1) != 0;
      pos_ = a.get_int("detect_positive", 1) != 0;
    } else {
      a.allow({});
    }
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "X");
    Tensor& y = io.output(0, DType::Bool, x.shape);
    bool* yp = y.ptr<bool>();
    const int64_t n = x.numel();
    if (kind_ == 0) {
      if (x.dtype != DType::Bool) throw std::invalid_argument("Not needs a bool input, got " + x.desc());
      const bool* xp = x.ptr<bool>();
      for (int64_t i = 0; i < n; ++i) yp[i] = !xp[i];
      return;
    }
    dispatch_dtype(x.dtype, kind_ == 1 ? "IsNaN" : "IsInf", [&](auto tag) {
      using T = decltype(tag);
      const T* xp = x.ptr<T>();
      for (int64_t i = 0; i < n; ++i) {
        const double v = to_double(xp[i]);
        yp[i] = kind_ == 1 ? std::isnan(v) : (std::isinf(v) && ((v > 0 && pos_) || (v < 0 && neg_)));
      }
    });
  }
 private:
  int kind_;
  bool neg_ = true, pos_ = true;
};

// Where(condition, X, Y): any dtype, three-way broadcast, byte copies.
class WhereKernel : public Kernel {
 public:
  explicit WhereKernel(const Attrs& a) { a.allow({}); }
  void run(StepIO& io) const override {
    const Tensor& c = require_input(io, 0, "condition");
    const Tensor& x = require_input(io, 1, "X");
    const Tensor& yv = require_input(io, 2, "Y");
    if (c.dtype != DType::Bool) throw std::invalid_argument("Where condition must be bool, got " + c.desc());
    if (x.dtype != yv.dtype) throw std::invalid_argument("Where X and Y dtypes differ: " + x.desc() + " vs " + yv.desc());
    const Shape out = broadcast_shapes(broadcast_shapes(c.shape, x.shape), yv.shape);
    Tensor& y = io.output(0, x.dtype, out);
    const bool* cp = c.ptr<bool>();
    auto go = [&](auto tag) {
      using T = decltype(tag);
      const T* xp = x.ptr<T>();
      const T* zp = yv.ptr<T>();
      T* yp = y.ptr<T>();
      broadcast_walk<3>(out, {&c.shape, &x.shape, &yv.shape}, io.pool(), kGrain,
                        [&](int64_t yo, const std::array<int64_t, 3>& o, int64_t n, const std::array<bool, 3>& v) {
                          const bool* pc = cp + o[0];
                          const T* px = xp + o[1];
                          const T* pz = zp + o[2];
                          if (v[0] && v[1] && v[2]) {
                            for (int64_t i = 0; i < n; ++i) yp[yo + i] = pc[i] ? px[i] : pz[i];
                          } else {
                            for (int64_t i = 0; i < n; ++i) yp[yo + i] = pc[v[0] ? i : 0] ? px[v[1] ? i : 0] : pz[v[2] ? i : 0];
                          }
                        });
    };
    switch (dtype_size(x.dtype)) {
      case 1: go(uint8_t{}); break;
      case 2: go(uint16_t{}); break;
      case 4: go(uint32_t{}); break;
      case 8: go(uint64_t{}); break;
      default: throw std::invalid_argument("Where: unsupported dtype " + x.desc());
    }
  }
};

template <class D, class S>
inline D cast_value(S v) {
  if constexpr (std::is_same_v<D, Half>) {
    return Half{float_to_half(static_cast<float>(to_double(v)))};
  } else if constexpr (std::is_same_v<D, bool>) {
    if constexpr (std::is_same_v<S, Half>) return (v.bits & 0x7fffu) != 0;
    else return v != S(0);
  } else if constexpr (std::is_same_v<S, Half>) {
    return static_cast<D>(half_to_float(v.bits));
  } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    // NaN and out-of-range values are undefined in ONNX; map them to 0 / the
    // nearest limit instead of invoking C++ undefined behaviour.
    if (v != v) return D(0);
    if (v <= static_cast<S>(std::numeric_limits<D>::lowest())) return std::numeric_limits<D>::lowest();
    if (v >= static_cast<S>(std::numeric_limits<D>::max())) return std::numeric_limits<D>::max();
    return static_cast<D>(v);
  } else if constexpr (std::is_same_v<D, float> && std::is_same_v<S, double>) {
    return static_cast<float>(v);
  } else {
    return static_cast<D>(v);
  }
}

class CastKernel : public Kernel {
 public:
  explicit CastKernel(const Attrs& a) {
    a.allow({"to", "saturate", "round_mode"});
    if (!a.has("to")) a.fail("to", "is required");
    to_ = static_cast<DType>(a.get_int("to", 1));
    if (dtype_size(to_) == 0) a.fail("to", "has unsupported dtype code " + std::to_string(a.get_int("to", 1)));
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "input");
    Tensor& y = io.output(0, to_, x.shape);
    const int64_t n = x.numel();
    if (x.dtype == to_) {
      if (n) std::memcpy(y.data, x.data, x.nbytes());
      return;
    }
    dispatch_dtype(x.dtype, "Cast input", [&](auto stag) {
      using S = decltype(stag);
      dispatch_dtype(to_, "Cast output", [&](auto dtag) {
        using D = decltype(dtag);
        const S* xp = x.ptr<S>();
        D* yp = y.ptr<D>();
        io.pool()->parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) yp[i] = cast_value<D, S>(xp[i]);
        });
      });
    });
  }
 private:
  DType to_;
};

template <Cmp op>
std::unique_ptr<Kernel> make_compare(const Attrs& a, int, int) { return std::make_unique<CompareKernel>(a, op); }
template <int kind>
std::unique_ptr<Kernel> make_predicate(const Attrs& a, int, int) { return std::make_unique<PredicateKernel>(a, kind); }
std::unique_ptr<Kernel> make_where(const Attrs& a, int, int) { return std::make_unique<WhereKernel>(a); }
std::unique_ptr<Kernel> make_cast(const Attrs& a, int, int) { return std::make_unique<CastKernel>(a); }

}  // namespace

void register_elementwise_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Add", make_binary<BinaryOp::Add>, 2, 2, 1, 1});
  ops.push_back({"Sub", make_binary<BinaryOp::Sub>, 2, 2, 1, 1});
  ops.push_back({"Mul", make_binary<BinaryOp::Mul>, 2, 2, 1, 1});
  ops.push_back({"Div", make_binary<BinaryOp::Div>, 2, 2, 1, 1});
  ops.push_back({"Pow", make_binary<BinaryOp::Pow>, 2, 2, 1, 1});
  ops.push_back({"Sum", make_variadic<BinaryOp::Add, false>, 1, 1 << 20, 1, 1});
  ops.push_back({"Mean", make_variadic<BinaryOp::Add, true>, 1, 1 << 20, 1, 1});
  ops.push_back({"Max", make_variadic<BinaryOp::Max, false>, 1, 1 << 20, 1, 1});
  ops.push_back({"Min", make_variadic<BinaryOp::Min, false>, 1, 1 << 20, 1, 1});
  ops.push_back({"Relu", make_unary<UnaryOp::Relu>, 1, 1, 1, 1});
  ops.push_back({"Sigmoid", make_unary<UnaryOp::Sigmoid>, 1, 1, 1, 1});
  ops.push_back({"Tanh", make_unary<UnaryOp::Tanh>, 1, 1, 1, 1});
  ops.push_back({"LeakyRelu", make_unary<UnaryOp::LeakyRelu>, 1, 1, 1, 1});
  ops.push_back({"Clip", make_unary<UnaryOp::Clip>, 1, 3, 1, 1});
  ops.push_back({"Exp", make_unary<UnaryOp::Exp>, 1, 1, 1, 1});
  ops.push_back({"Log", make_unary<UnaryOp::Log>, 1, 1, 1, 1});
  ops.push_back({"Sqrt", make_unary<UnaryOp::Sqrt>, 1, 1, 1, 1});
  ops.push_back({"Neg", make_unary<UnaryOp::Neg>, 1, 1, 1, 1});
  ops.push_back({"Abs", make_unary<UnaryOp::Abs>, 1, 1, 1, 1});
  ops.push_back({"Erf", make_unary<UnaryOp::Erf>, 1, 1, 1, 1});
  ops.push_back({"Reciprocal", make_unary<UnaryOp::Reciprocal>, 1, 1, 1, 1});
  ops.push_back({"HardSigmoid", make_unary<UnaryOp::HardSigmoid>, 1, 1, 1, 1});
  ops.push_back({"HardSwish", make_unary<UnaryOp::HardSwish>, 1, 1, 1, 1});
  ops.push_back({"Floor", make_unary<UnaryOp::Floor>, 1, 1, 1, 1});
  ops.push_back({"Ceil", make_unary<UnaryOp::Ceil>, 1, 1, 1, 1});
  ops.push_back({"Gelu", make_unary<UnaryOp::Gelu>, 1, 1, 1, 1});
  ops.push_back({"Sign", make_unary<UnaryOp::Sign>, 1, 1, 1, 1});
  ops.push_back({"Softplus", make_unary<UnaryOp::Softplus>, 1, 1, 1, 1});
  ops.push_back({"Equal", make_compare<Cmp::Equal>, 2, 2, 1, 1});
  ops.push_back({"Less", make_compare<Cmp::Less>, 2, 2, 1, 1});
  ops.push_back({"Greater", make_compare<Cmp::Greater>, 2, 2, 1, 1});
  ops.push_back({"LessOrEqual", make_compare<Cmp::LessEq>, 2, 2, 1, 1});
  ops.push_back({"GreaterOrEqual", make_compare<Cmp::GreaterEq>, 2, 2, 1, 1});
  ops.push_back({"And", make_compare<Cmp::And>, 2, 2, 1, 1});
  ops.push_back({"Or", make_compare<Cmp::Or>, 2, 2, 1, 1});
  ops.push_back({"Xor", make_compare<Cmp::Xor>, 2, 2, 1, 1});
  ops.push_back({"Not", make_predicate<0>, 1, 1, 1, 1});
  ops.push_back({"IsNaN", make_predicate<1>, 1, 1, 1, 1});
  ops.push_back({"IsInf", make_predicate<2>, 1, 1, 1, 1});
  ops.push_back({"Where", make_where, 3, 3, 1, 1});
  ops.push_back({"Cast", make_cast, 1, 1, 1, 1});
}

}  // namespace infopt
