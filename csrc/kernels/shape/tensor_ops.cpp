// Data-movement ops that create or replicate tensors: Expand, Tile, Split,
// Pad, Trilu, ConstantOfShape, Range. All but Range and ConstantOfShape move
// bytes only and accept every dtype.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "kernels/broadcast.h"
#include "kernels/dtype_dispatch.h"
#include "kernels/kernel.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace {

std::vector<int64_t> ints_of(const Tensor& t, const char* name) {
  std::vector<int64_t> r(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::Int64) {
    if (!r.empty()) std::memcpy(r.data(), t.data, r.size() * 8);
  } else if (t.dtype == DType::Int32) {
    for (size_t i = 0; i < r.size(); ++i) r[i] = t.ptr<int32_t>()[i];
  } else {
    throw std::invalid_argument(std::string(name) + " must be int64 or int32, got " + t.desc());
  }
  return r;
}

// Copies n elements of size es from src (stride 1, or 0 = repeat one element).
inline void fill_run(char* dst, const char* src, int64_t n, bool vec, size_t es) {
  if (vec) {
    std::memcpy(dst, src, static_cast<size_t>(n) * es);
    return;
  }
  switch (es) {
    case 1: std::memset(dst, *src, static_cast<size_t>(n)); break;
    case 4: { uint32_t v; std::memcpy(&v, src, 4); std::fill_n(reinterpret_cast<uint32_t*>(dst), n, v); break; }
    case 8: { uint64_t v; std::memcpy(&v, src, 8); std::fill_n(reinterpret_cast<uint64_t*>(dst), n, v); break; }
    default: for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * static_cast<int64_t>(es), src, es);
  }
}

class ExpandKernel : public Kernel {
 public:
  explicit ExpandKernel(const Attrs& a) { a.allow({}); }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "input");
    const std::vector<int64_t> req = ints_of(require_input(io, 1, "shape"), "shape");
    const Shape out = broadcast_shapes(x.shape, req);
    Tensor& y = io.output(0, x.dtype, out);
    const size_t es = dtype_size(x.dtype);
    const char* xp = static_cast<const char*>(x.data);
    char* yp = static_cast<char*>(y.data);
    broadcast_walk<1>(out, {&x.shape}, io.pool(), 65536,
                      [&](int64_t yo, const std::array<int64_t, 1>& o, int64_t n, const std::array<bool, 1>& v) {
                        fill_run(yp + yo * static_cast<int64_t>(es), xp + o[0] * static_cast<int64_t>(es), n, v[0], es);
                      });
  }
};

class TileKernel : public Kernel {
 public:
  explicit TileKernel(const Attrs& a) { a.allow({}); }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "input");
    const std::vector<int64_t> rep = ints_of(require_input(io, 1, "repeats"), "repeats");
    const int64_t r = x.ndim();
    if (static_cast<int64_t>(rep.size()) != r) fail_shape("Tile: repeats " + shape_str(rep) + " do not match " + x.desc());
    Shape out(static_cast<size_t>(r));
    for (int64_t d = 0; d < r; ++d) {
      if (rep[static_cast<size_t>(d)] < 0) fail_shape("Tile: negative repeat in " + shape_str(rep));
      out[static_cast<size_t>(d)] = x.dim(d) * rep[static_cast<size_t>(d)];
    }
    Tensor& y = io.output(0, x.dtype, out);
    if (y.numel() == 0) return;
    const size_t es = dtype_size(x.dtype);
    const int64_t inner = r ? x.dim(r - 1) : 1;
    const int64_t rows = y.numel() / std::max<int64_t>(1, out.empty() ? 1 : out.back());
    const char* xp = static_cast<const char*>(x.data);
    char* yp = static_cast<char*>(y.data);
    const int64_t orow = (out.empty() ? 1 : out.back()) * static_cast<int64_t>(es);
    for (int64_t row = 0; row < rows; ++row) {
      int64_t rem = row, off = 0, stride = inner;
      for (int64_t d = r - 2; d >= 0; --d) {
        const int64_t i = rem % out[static_cast<size_t>(d)];
        rem /= out[static_cast<size_t>(d)];
        off += (i % x.dim(d)) * stride;
        stride *= x.dim(d);
      }
      char* dst = yp + row * orow;
      for (int64_t k = 0; k < (r ? rep.back() : 1); ++k) {
        std::memcpy(dst + k * inner * static_cast<int64_t>(es), xp + off * static_cast<int64_t>(es), static_cast<size_t>(inner) * es);
      }
    }
  }
};

class SplitKernel : public Kernel {
 public:
  SplitKernel(const Attrs& a, int num_outputs) {
    a.allow({"axis", "split", "num_outputs"});
    axis_ = a.get_int("axis", 0);
    split_ = a.get_ints("split");
    num_ = a.get_int("num_outputs", 0);
    if (a.has("num_outputs") && num_ != num_outputs) a.fail("num_outputs", "does not match the number of outputs");
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "input");
    const int64_t axis = normalize_axis(axis_, x.ndim(), "Split");
    const int64_t dim = x.dim(axis), n = io.num_outputs();
    std::vector<int64_t> sizes = split_;
    if (const Tensor* t = io.input(1)) sizes = ints_of(*t, "split");
    if (sizes.empty()) {
      const int64_t chunk = num_ ? (dim + n - 1) / n : dim / n;  // opset 18: last chunk may be smaller
      if (!num_ && dim % n) fail_shape("Split: axis of size " + std::to_string(dim) + " does not split evenly into " + std::to_string(n));
      for (int64_t i = 0; i < n; ++i) sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
    }
    int64_t total = 0;
    for (int64_t s : sizes) total += s;
    if (static_cast<int64_t>(sizes.size()) != n || total != dim) {
      fail_shape("Split: sizes " + shape_str(sizes) + " do not split axis " + std::to_string(axis) + " of " + x.desc() +
                 " into " + std::to_string(n) + " outputs");
    }
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
    for (int64_t d = axis + 1; d < x.ndim(); ++d) inner *= x.dim(d);
    const size_t es = dtype_size(x.dtype);
    const char* xp = static_cast<const char*>(x.data);
    int64_t start = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t len = sizes[static_cast<size_t>(i)];
      Shape s = x.shape;
      s[static_cast<size_t>(axis)] = len;
      Tensor& y = io.output(static_cast<int>(i), x.dtype, s);
      const size_t chunk = static_cast<size_t>(len * inner) * es;
      char* yp = static_cast<char*>(y.data);
      for (int64_t o = 0; o < outer; ++o) {
        std::memcpy(yp + o * static_cast<int64_t>(chunk), xp + ((o * dim + start) * inner) * static_cast<int64_t>(es), chunk);
      }
      start += len;
    }
  }
 private:
  int64_t axis_, num_;
  std::vector<int64_t> split_;
};

// Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the
// last two dims, zeroing the rest.
class TriluKernel : public Kernel {
 public:
  explicit TriluKernel(const Attrs& a) {
    a.allow({"upper"});
    upper_ = a.get_int("upper", 1) != 0;
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "input");
    if (x.ndim() < 2) fail_shape("Trilu needs rank >= 2, got " + x.desc());
    int64_t k = 0;
    if (const Tensor* t = io.input(1)) {
      const auto v = ints_of(*t, "k");
      if (v.size() != 1) fail_shape("Trilu: k must be a scalar, got " + t->desc());
      k = v[0];
    }
    Tensor& y = io.output(0, x.dtype, x.shape);
    const int64_t R = x.dim(x.ndim() - 2), C = x.dim(x.ndim() - 1), B = x.numel() / std::max<int64_t>(1, R * C);
    const size_t es = dtype_size(x.dtype);
    const char* xp = static_cast<const char*>(x.data);
    char* yp = static_cast<char*>(y.data);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < R; ++i) {
        const int64_t off = (b * R + i) * C * static_cast<int64_t>(es);
        // kept columns: upper j >= i + k; lower j <= i + k
        const int64_t lo = upper_ ? std::clamp<int64_t>(i + k, 0, C) : 0;
        const int64_t hi = upper_ ? C : std::clamp<int64_t>(i + k + 1, 0, C);
        std::memset(yp + off, 0, static_cast<size_t>(C) * es);
        if (hi > lo) std::memcpy(yp + off + lo * static_cast<int64_t>(es), xp + off + lo * static_cast<int64_t>(es), static_cast<size_t>(hi - lo) * es);
      }
  }
 private:
  bool upper_;
};

// ConstantOfShape. The ONNX `value` tensor attribute arrives in canonical
// form: `dtype` (ONNX code, default float32) and `value` (float) or
// `value_int` (int, exact for 64-bit integers).
class ConstantOfShapeKernel : public Kernel {
 public:
  explicit ConstantOfShapeKernel(const Attrs& a) {
    a.allow({"dtype", "value", "value_int"});
    dtype_ = static_cast<DType>(a.get_int("dtype", 1));
    if (dtype_size(dtype_) == 0) a.fail("dtype", "unsupported dtype code");
    has_int_ = a.has("value_int");
    fval_ = a.get_float("value", 0.0);
    ival_ = a.get_int("value_int", 0);
  }
  void run(StepIO& io) const override {
    const std::vector<int64_t> shape = ints_of(require_input(io, 0, "input"), "input");
    for (int64_t d : shape) if (d < 0) fail_shape("ConstantOfShape: negative dimension in " + shape_str(shape));
    Tensor& y = io.output(0, dtype_, shape);
    const int64_t n = y.numel();
    dispatch_dtype(dtype_, "ConstantOfShape", [&](auto tag) {
      using T = decltype(tag);
      T v;
      if constexpr (std::is_same_v<T, Half>) v = Half{float_to_half(static_cast<float>(has_int_ ? static_cast<double>(ival_) : fval_))};
      else if constexpr (std::is_same_v<T, bool>) v = has_int_ ? ival_ != 0 : fval_ != 0.0;
      else if constexpr (std::is_integral_v<T>) v = has_int_ ? static_cast<T>(ival_) : static_cast<T>(fval_);
      else v = has_int_ ? static_cast<T>(ival_) : static_cast<T>(fval_);
      std::fill_n(y.ptr<T>(), n, v);
    });
  }
 private:
  DType dtype_;
  bool has_int_;
  double fval_;
  int64_t ival_;
};

class RangeKernel : public Kernel {
 public:
  explicit RangeKernel(const Attrs& a) { a.allow({}); }
  void run(StepIO& io) const override {
    const Tensor& s = require_input(io, 0, "start");
    const Tensor& l = require_input(io, 1, "limit");
    const Tensor& d = require_input(io, 2, "delta");
    if (s.dtype != l.dtype || s.dtype != d.dtype || s.numel() != 1 || l.numel() != 1 || d.numel() != 1) {
      fail_shape("Range needs three scalars of one dtype, got " + s.desc() + ", " + l.desc() + ", " + d.desc());
    }
    auto go = [&](auto tag) {
      using T = decltype(tag);
      const T start = *s.ptr<T>(), limit = *l.ptr<T>(), delta = *d.ptr<T>();
      if (delta == T(0)) fail_shape("Range: delta is zero");
      const double cnt = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) / static_cast<double>(delta));
      const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(cnt));
      Tensor& y = io.output(0, s.dtype, {n});
      T* yp = y.ptr<T>();
      for (int64_t i = 0; i < n; ++i) yp[i] = static_cast<T>(start + static_cast<T>(i) * delta);
    };
    switch (s.dtype) {
      case DType::Float32: return go(float{});
      case DType::Float64: return go(double{});
      case DType::Int64: return go(int64_t{});
      case DType::Int32: return go(int32_t{});
      case DType::Int16: return go(int16_t{});
      default: throw std::invalid_argument("Range: unsupported dtype " + s.desc());
    }
  }
};

// Pad (opset 2 attribute form and opset 11+/18 input form): constant,
// reflect, edge and wrap modes; negative pads crop.
class PadKernel : public Kernel {
 public:
  explicit PadKernel(const Attrs& a) {
    a.allow({"mode", "pads", "value"});
    mode_ = a.get_str("mode", "constant");
    if (mode_ != "constant" && mode_ != "reflect" && mode_ != "edge" && mode_ != "wrap") {
      a.fail("mode", "has unsupported value '" + mode_ + "'");
    }
    pads_ = a.get_ints("pads");
    has_pads_ = a.has("pads");
    value_ = a.get_float("value", 0.0);
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "data");
    const int64_t r = x.ndim();
    std::vector<int64_t> pads = pads_;
    if (!has_pads_) pads = ints_of(require_input(io, 1, "pads"), "pads");
    const Tensor* cv = has_pads_ ? nullptr : io.input(2);
    std::vector<int64_t> axes;
    if (const Tensor* t = has_pads_ ? nullptr : io.input(3)) axes = ints_of(*t, "axes");
    std::vector<int64_t> pb(static_cast<size_t>(r), 0), pe(static_cast<size_t>(r), 0);
    if (axes.empty()) {
      if (static_cast<int64_t>(pads.size()) != 2 * r) fail_shape("Pad: pads " + shape_str(pads) + " do not match " + x.desc());
      for (int64_t d = 0; d < r; ++d) pb[static_cast<size_t>(d)] = pads[static_cast<size_t>(d)], pe[static_cast<size_t>(d)] = pads[static_cast<size_t>(d + r)];
    } else {
      const size_t na = axes.size();
      if (pads.size() != 2 * na) fail_shape("Pad: pads " + shape_str(pads) + " do not match axes " + shape_str(axes));
      for (size_t i = 0; i < na; ++i) {
        const size_t d = static_cast<size_t>(normalize_axis(axes[i], r, "Pad"));
        pb[d] = pads[i];
        pe[d] = pads[i + na];
      }
    }
    Shape out(static_cast<size_t>(r));
    for (int64_t d = 0; d < r; ++d) {
      const size_t u = static_cast<size_t>(d);
      out[u] = x.dim(d) + pb[u] + pe[u];
      if (out[u] < 0) fail_shape("Pad: pads " + shape_str(pads) + " crop more than " + x.desc());
      if (mode_ != "constant" && x.dim(d) == 0 && out[u] > 0) fail_shape("Pad: mode " + mode_ + " cannot pad an empty axis of " + x.desc());
    }
    Tensor& y = io.output(0, x.dtype, out);
    if (y.numel() == 0) return;
    const size_t es = dtype_size(x.dtype);
    // Constant value as bytes of the data dtype.
    std::vector<char> fill(es, 0);
    if (cv) {
      if (cv->dtype != x.dtype || cv->numel() != 1) fail_shape("Pad: constant_value " + cv->desc() + " must be a scalar of the data dtype");
      std::memcpy(fill.data(), cv->data, es);
    } else if (value_ != 0.0) {
      dispatch_dtype(x.dtype, "Pad", [&](auto tag) {
        using T = decltype(tag);
        T v;
        if constexpr (std::is_same_v<T, Half>) v = Half{float_to_half(static_cast<float>(value_))};
        else v = static_cast<T>(value_);
        std::memcpy(fill.data(), &v, es);
      });
    }
    // Per axis: output index -> input index (-1 = constant fill).
    std::vector<std::vector<int64_t>> map(static_cast<size_t>(r));
    for (int64_t d = 0; d < r; ++d) {
      const size_t u = static_cast<size_t>(d);
      const int64_t n = x.dim(d);
      map[u].resize(static_cast<size_t>(out[u]));
      for (int64_t o = 0; o < out[u]; ++o) {
        int64_t i = o - pb[u];
        if (i < 0 || i >= n) {
          if (mode_ == "constant") i = -1;
          else if (mode_ == "edge") i = std::clamp<int64_t>(i, 0, n - 1);
          else if (mode_ == "wrap") i = ((i % n) + n) % n;
          else if (n == 1) i = 0;
          else {
            const int64_t period = 2 * (n - 1);
            i = ((i % period) + period) % period;
            if (i >= n) i = period - i;
          }
        }
        map[u][static_cast<size_t>(o)] = i;
      }
    }
    std::vector<int64_t> in_strides(static_cast<size_t>(r), 1);
    for (int64_t d = r - 2; d >= 0; --d) in_strides[static_cast<size_t>(d)] = in_strides[static_cast<size_t>(d + 1)] * x.dim(d + 1);
    const int64_t W = r ? out.back() : 1;
    const int64_t rows = y.numel() / std::max<int64_t>(W, 1);
    const char* xp = static_cast<const char*>(x.data);
    char* yp = static_cast<char*>(y.data);
    const int64_t ses = static_cast<int64_t>(es);
    auto work = [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        char* dst = yp + row * W * ses;
        int64_t rem = row, off = 0;
        bool filled = false;
        for (int64_t d = r - 2; d >= 0; --d) {
          const int64_t o = rem % out[static_cast<size_t>(d)];
          rem /= out[static_cast<size_t>(d)];
          const int64_t i = map[static_cast<size_t>(d)][static_cast<size_t>(o)];
          if (i < 0) filled = true;
          off += i * in_strides[static_cast<size_t>(d)];
        }
        if (r == 0) {
          std::memcpy(dst, xp, es);
          continue;
        }
        if (filled) {
          fill_run(dst, fill.data(), W, false, es);
          continue;
        }
        const std::vector<int64_t>& m = map[static_cast<size_t>(r - 1)];
        const char* src = xp + off * ses;
        int64_t o = 0;
        while (o < W) {
          const int64_t i = m[static_cast<size_t>(o)];
          int64_t e = o + 1;
          if (i < 0) {
            while (e < W && m[static_cast<size_t>(e)] < 0) ++e;
            fill_run(dst + o * ses, fill.data(), e - o, false, es);
          } else {
            while (e < W && m[static_cast<size_t>(e)] == i + (e - o)) ++e;
            std::memcpy(dst + o * ses, src + i * ses, static_cast<size_t>(e - o) * es);
          }
          o = e;
        }
      }
    };
    if (y.numel() > 65536) io.pool()->parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(W, 1)), work);
    else work(0, rows);
  }
 private:
  std::string mode_;
  std::vector<int64_t> pads_;
  bool has_pads_ = false;
  double value_ = 0.0;
};

std::unique_ptr<Kernel> make_expand(const Attrs& a, int, int) { return std::make_unique<ExpandKernel>(a); }
std::unique_ptr<Kernel> make_tile(const Attrs& a, int, int) { return std::make_unique<TileKernel>(a); }
std::unique_ptr<Kernel> make_split(const Attrs& a, int, int n) { return std::make_unique<SplitKernel>(a, n); }
std::unique_ptr<Kernel> make_trilu(const Attrs& a, int, int) { return std::make_unique<TriluKernel>(a); }
std::unique_ptr<Kernel> make_cos(const Attrs& a, int, int) { return std::make_unique<ConstantOfShapeKernel>(a); }
std::unique_ptr<Kernel> make_range(const Attrs& a, int, int) { return std::make_unique<RangeKernel>(a); }
std::unique_ptr<Kernel> make_pad(const Attrs& a, int, int) { return std::make_unique<PadKernel>(a); }

}  // namespace

void register_tensor_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Expand", make_expand, 2, 2, 1, 1});
  ops.push_back({"Tile", make_tile, 2, 2, 1, 1});
  ops.push_back({"Split", make_split, 1, 2, 1, 1 << 16});
  ops.push_back({"Trilu", make_trilu, 1, 2, 1, 1});
  ops.push_back({"ConstantOfShape", make_cos, 1, 1, 1, 1});
  ops.push_back({"Range", make_range, 3, 3, 1, 1});
  ops.push_back({"Pad", make_pad, 1, 4, 1, 1});
}

}  // namespace infopt
