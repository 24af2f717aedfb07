// Broadcasting elementwise ops. Shapes are collapsed so the inner loop is a
// contiguous run in every operand (or a broadcast scalar), then rows are
// spread over the thread pool.
#include "kernels/elementwise/elementwise.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "kernels/broadcast.h"
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
}

}  // namespace infopt
