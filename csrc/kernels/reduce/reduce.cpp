// ReduceSum / Mean / Max / Min / Prod / L1 / L2 / SumSquare / LogSum /
// LogSumExp over any set of axes (attribute or, from opset 13/18, input 1),
// with keepdims and noop_with_empty_axes. float32/float64 accumulate in
// double, integers in int64. Adjacent reduced (or kept) dims are merged, so
// the walk is: output element (or output row when the innermost dim is kept)
// x list of reduced offsets x contiguous inner run.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "kernels/kernel.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace {

enum class Red { Sum, Mean, Max, Min, Prod, L1, L2, SumSquare, LogSum, LogSumExp };

template <class A>
inline A red_init(Red op) {
  switch (op) {
    case Red::Prod: return A(1);
    case Red::Max: return std::numeric_limits<A>::has_infinity ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::lowest();
    case Red::Min: return std::numeric_limits<A>::has_infinity ? std::numeric_limits<A>::infinity() : std::numeric_limits<A>::max();
    default: return A(0);
  }
}

template <Red op, class A>
inline A red_step(A a, A v) {
  if constexpr (op == Red::Sum || op == Red::Mean || op == Red::LogSum) return a + v;
  if constexpr (op == Red::Prod) return a * v;
  if constexpr (op == Red::Max) return (a != a || v < a) ? a : v;  // NaN sticks, as in numpy
  if constexpr (op == Red::Min) return (a != a || v > a) ? a : v;
  if constexpr (op == Red::L1) return a + (v < 0 ? -v : v);
  if constexpr (op == Red::L2 || op == Red::SumSquare) return a + v * v;
  if constexpr (op == Red::LogSumExp) return a + std::exp(static_cast<double>(v));
  return a;
}

template <class A>
inline A red_final(Red op, A a, int64_t count) {
  switch (op) {
    case Red::Mean: return count ? a / static_cast<A>(count) : a;
    case Red::L2: return static_cast<A>(std::sqrt(static_cast<double>(a)));
    case Red::LogSum:
    case Red::LogSumExp: return static_cast<A>(std::log(static_cast<double>(a)));
    default: return a;
  }
}

std::vector<int64_t> read_axes(const Tensor& t) {
  std::vector<int64_t> r(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::Int64) {
    if (!r.empty()) std::memcpy(r.data(), t.data, r.size() * 8);
  } else if (t.dtype == DType::Int32) {
    for (size_t i = 0; i < r.size(); ++i) r[i] = t.ptr<int32_t>()[i];
  } else {
    throw std::invalid_argument("axes must be int64 or int32, got " + t.desc());
  }
  return r;
}

struct ReducePlan {
  int64_t inner = 1;      // contiguous innermost run
  bool inner_reduced = false;
  std::vector<int64_t> red_off;   // offsets of every combination of the other reduced dims
  std::vector<int64_t> kept_dims, kept_strides;  // other kept dims (outermost first), input strides
  int64_t count = 1;      // elements reduced into one output
};

template <class T, Red op>
void reduce_typed(const Tensor& x, Tensor& y, const ReducePlan& p, ThreadPool* pool) {
  using A = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  const T* xp = x.ptr<T>();
  T* yp = y.ptr<T>();
  // bool max / min of an empty set: false / true (the identities of or / and)
  const A init = std::is_same_v<T, bool> && (op == Red::Max || op == Red::Min) ? A(op == Red::Min) : red_init<A>(op);
  const int64_t nk = shape_numel(p.kept_dims);
  const int64_t L = p.inner;
  auto base_of = [&](int64_t o) {
    int64_t b = 0;
    for (size_t d = p.kept_dims.size(); d-- > 0;) {
      b += (o % p.kept_dims[d]) * p.kept_strides[d];
      o /= p.kept_dims[d];
    }
    return b;
  };
  const int64_t work = std::max<int64_t>(1, p.count * (p.inner_reduced ? 1 : L));
  const int64_t grain = std::max<int64_t>(1, 32768 / work);
  if (p.inner_reduced) {
    pool->parallel_for(nk, grain, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const T* src = xp + base_of(o);
        A acc = init;
        for (int64_t ro : p.red_off) {
          const T* s = src + ro;
          if constexpr (std::is_same_v<T, float> && (op == Red::Sum || op == Red::Mean)) {
            // Contiguous float sums: 8 float lanes (vectorised) over blocks of 512,
            // each block total added in double.
            for (int64_t b0 = 0; b0 < L; b0 += 512) {
              const int64_t b1 = std::min(L, b0 + 512);
              float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
              int64_t i = b0;
              for (; i + 8 <= b1; i += 8)
                for (int j = 0; j < 8; ++j) lane[j] += s[i + j];
              double blk = 0.0;
              for (int j = 0; j < 8; ++j) blk += lane[j];
              for (; i < b1; ++i) blk += s[i];
              acc += blk;
            }
          } else {
            for (int64_t i = 0; i < L; ++i) acc = red_step<op, A>(acc, static_cast<A>(s[i]));
          }
        }
        yp[o] = static_cast<T>(red_final<A>(op, acc, p.count));
      }
    });
  } else {
    pool->parallel_for(nk, grain, [&](int64_t o0, int64_t o1) {
      std::vector<A> acc(static_cast<size_t>(L));
      for (int64_t o = o0; o < o1; ++o) {
        const T* src = xp + base_of(o);
        std::fill(acc.begin(), acc.end(), init);
        for (int64_t ro : p.red_off) {
          const T* s = src + ro;
          for (int64_t i = 0; i < L; ++i) acc[static_cast<size_t>(i)] = red_step<op, A>(acc[static_cast<size_t>(i)], static_cast<A>(s[i]));
        }
        T* dst = yp + o * L;
        for (int64_t i = 0; i < L; ++i) dst[i] = static_cast<T>(red_final<A>(op, acc[static_cast<size_t>(i)], p.count));
      }
    });
  }
}

template <Red op>
void reduce_dispatch(const Tensor& x, Tensor& y, const ReducePlan& p, ThreadPool* pool) {
  switch (x.dtype) {
    case DType::Float32: return reduce_typed<float, op>(x, y, p, pool);
    case DType::Float64: return reduce_typed<double, op>(x, y, p, pool);
    case DType::Int64: return reduce_typed<int64_t, op>(x, y, p, pool);
    case DType::Int32: return reduce_typed<int32_t, op>(x, y, p, pool);
    case DType::Int8:
      if constexpr (op == Red::Max || op == Red::Min) return reduce_typed<int8_t, op>(x, y, p, pool);
      break;
    case DType::UInt8:
      if constexpr (op == Red::Max || op == Red::Min) return reduce_typed<uint8_t, op>(x, y, p, pool);
      break;
    case DType::Bool:
      if constexpr (op == Red::Max || op == Red::Min) return reduce_typed<bool, op>(x, y, p, pool);
      break;
    default:
      break;
  }
  throw std::invalid_argument("unsupported dtype " + x.desc());
}
class ReduceKernel : public Kernel {
 public:
  ReduceKernel(const Attrs& a, Red op) : op_(op) {
    a.allow({"axes", "keepdims", "noop_with_empty_axes"});
    axes_ = a.get_ints("axes");
    keepdims_ = a.get_int("keepdims", 1) != 0;
    noop_ = a.get_int("noop_with_empty_axes", 0) != 0;
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "data");
    std::vector<int64_t> axes = axes_;
    if (const Tensor* t = io.input(1)) axes = read_axes(*t);
    const int64_t r = x.ndim();
    if (axes.empty() && noop_) {
      Tensor& y = io.output(0, x.dtype, x.shape);
      if (x.nbytes()) std::memcpy(y.data, x.data, x.nbytes());
      return;
    }
    std::vector<char> red(static_cast<size_t>(r), axes.empty() ? 1 : 0);
    for (int64_t a : axes) {
      const int64_t n = normalize_axis(a, r, "Reduce");
      if (red[static_cast<size_t>(n)]) fail_shape("Reduce: axis " + std::to_string(a) + " repeated in " + shape_str(axes));
      red[static_cast<size_t>(n)] = 1;
    }
    Shape out;
    for (int64_t d = 0; d < r; ++d) {
      if (!red[static_cast<size_t>(d)]) out.push_back(x.dim(d));
      else if (keepdims_) out.push_back(1);
    }
    Tensor& y = io.output(0, x.dtype, out);
    // Merge dims (dropping size-1 ones) into runs of one kind, innermost first.
    std::vector<int64_t> dims, strides;
    std::vector<char> kinds;
    int64_t stride = 1;
    for (int64_t d = r - 1; d >= 0; --d) {
      const int64_t n = x.dim(d);
      const char k = red[static_cast<size_t>(d)];
      if (n != 1) {
        if (!dims.empty() && kinds.back() == k && strides.back() * dims.back() == stride) {
          dims.back() *= n;
        } else {
          dims.push_back(n);
          strides.push_back(stride);
          kinds.push_back(k);
        }
      }
      stride *= n;
    }
    ReducePlan p;
    p.red_off = {0};
    if (!dims.empty()) {
      p.inner = dims[0];
      p.inner_reduced = kinds[0] != 0;
    } else {
      p.inner_reduced = true;
    }
    if (p.inner_reduced) p.count = p.inner;
    for (size_t i = dims.empty() ? 0 : 1; i < dims.size(); ++i) {
      if (kinds[i]) {
        std::vector<int64_t> next;
        next.reserve(p.red_off.size() * static_cast<size_t>(dims[i]));
        for (int64_t j = 0; j < dims[i]; ++j)
          for (int64_t o : p.red_off) next.push_back(o + j * strides[i]);
        p.red_off.swap(next);
        p.count *= dims[i];
      }
    }
    for (size_t i = dims.size(); i-- > (dims.empty() ? 0 : 1);) {
      if (!kinds[i]) {
        p.kept_dims.push_back(dims[i]);
        p.kept_strides.push_back(strides[i]);
      }
    }
    if (x.numel() == 0) p.red_off.clear(), p.count = 0;
    if (y.numel() == 0) return;
    if (x.numel() == 0) {  // empty reduction: identity values
      p.inner = 1;
      p.inner_reduced = true;
      p.kept_dims = {y.numel()};
      p.kept_strides = {0};
    }
    switch (op_) {
      case Red::Sum: return reduce_dispatch<Red::Sum>(x, y, p, io.pool());
      case Red::Mean: return reduce_dispatch<Red::Mean>(x, y, p, io.pool());
      case Red::Max: return reduce_dispatch<Red::Max>(x, y, p, io.pool());
      case Red::Min: return reduce_dispatch<Red::Min>(x, y, p, io.pool());
      case Red::Prod: return reduce_dispatch<Red::Prod>(x, y, p, io.pool());
      case Red::L1: return reduce_dispatch<Red::L1>(x, y, p, io.pool());
      case Red::L2: return reduce_dispatch<Red::L2>(x, y, p, io.pool());
      case Red::SumSquare: return reduce_dispatch<Red::SumSquare>(x, y, p, io.pool());
      case Red::LogSum: return reduce_dispatch<Red::LogSum>(x, y, p, io.pool());
      case Red::LogSumExp: return reduce_dispatch<Red::LogSumExp>(x, y, p, io.pool());
    }
  }
 private:
  Red op_;
  std::vector<int64_t> axes_;
  bool keepdims_ = true, noop_ = false;
};

template <Red op>
std::unique_ptr<Kernel> make_reduce(const Attrs& a, int, int) { return std::make_unique<ReduceKernel>(a, op); }

}  // namespace

void register_reduce_ops(std::vector<OpDef>& ops) {
  ops.push_back({"ReduceSum", make_reduce<Red::Sum>, 1, 2, 1, 1});
  ops.push_back({"ReduceMean", make_reduce<Red::Mean>, 1, 2, 1, 1});
  ops.push_back({"ReduceMax", make_reduce<Red::Max>, 1, 2, 1, 1});
  ops.push_back({"ReduceMin", make_reduce<Red::Min>, 1, 2, 1, 1});
  ops.push_back({"ReduceProd", make_reduce<Red::Prod>, 1, 2, 1, 1});
  ops.push_back({"ReduceL1", make_reduce<Red::L1>, 1, 2, 1, 1});
  ops.push_back({"ReduceL2", make_reduce<Red::L2>, 1, 2, 1, 1});
  ops.push_back({"ReduceSumSquare", make_reduce<Red::SumSquare>, 1, 2, 1, 1});
  ops.push_back({"ReduceLogSum", make_reduce<Red::LogSum>, 1, 2, 1, 1});
  ops.push_back({"ReduceLogSumExp", make_reduce<Red::LogSumExp>, 1, 2, 1, 1});
}

}  // namespace infopt
