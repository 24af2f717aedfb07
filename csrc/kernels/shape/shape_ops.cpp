// Layout ops. They move bytes and never look at values, so every dtype works.
// Reshape, Flatten, Squeeze, Unsqueeze, Identity and Dropout are views: their
// output aliases the input buffer (the executor extends the base's lifetime).
#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "kernels/kernel.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace {

std::vector<int64_t> read_int_tensor(const Tensor& t, const char* name) {
  std::vector<int64_t> r(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::Int64) {
    std::memcpy(r.data(), t.data, r.size() * 8);
  } else if (t.dtype == DType::Int32) {
    for (size_t i = 0; i < r.size(); ++i) r[i] = t.ptr<int32_t>()[i];
  } else {
    throw std::invalid_argument(std::string(name) + " must be int64 or int32, got " + t.desc());
  }
  return r;
}

class ReshapeKernel : public Kernel {
 public:
  explicit ReshapeKernel(const Attrs& a) {
    a.allow({"allowzero", "shape"});
    allowzero_ = a.get_int("allowzero", 0) != 0;
    if (a.has("shape")) shape_attr_ = a.get_ints("shape"), has_attr_ = true;
  }
  int view_of(int) const override { return 0; }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "data");
    std::vector<int64_t> req = has_attr_ ? shape_attr_ : read_int_tensor(require_input(io, 1, "shape"), "shape");
    Shape out(req.size());
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < req.size(); ++i) {
      int64_t d = req[i];
      if (d == 0 && !allowzero_) {
        if (i >= x.shape.size()) fail_shape("Reshape: 0 at position " + std::to_string(i) + " but input is " + x.desc());
        d = x.shape[i];
      }
      if (d == -1) {
        if (infer >= 0) fail_shape("Reshape: more than one -1 in " + shape_str(req));
        infer = static_cast<int64_t>(i);
        continue;
      }
      if (d < 0) fail_shape("Reshape: invalid dimension in " + shape_str(req));
      out[i] = d;
      known *= d;
    }
    if (infer >= 0) {
      if (known == 0 || x.numel() % known) fail_shape("Reshape: cannot infer -1 reshaping " + x.desc() + " to " + shape_str(req));
      out[static_cast<size_t>(infer)] = x.numel() / known;
    }
    if (shape_numel(out) != x.numel()) fail_shape("Reshape: cannot reshape " + x.desc() + " to " + shape_str(req));
    io.alias_output(0, 0, out);
  }
 private:
  bool allowzero_ = false, has_attr_ = false;
  std::vector<int64_t> shape_attr_;
};

class FlattenKernel : public Kernel {
 public:
  explicit FlattenKernel(const Attrs& a) {
    a.allow({"axis"});
    axis_ = a.get_int("axis", 1);
  }
  int view_of(int) const override { return 0; }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "input");
    const int64_t r = x.ndim();
    const int64_t axis = axis_ < 0 ? axis_ + r : axis_;
    if (axis < 0 || axis > r) fail_shape("Flatten: axis " + std::to_string(axis_) + " out of range for " + x.desc());
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < r; ++i) (i < axis ? outer : inner) *= x.dim(i);
    io.alias_output(0, 0, {outer, inner});
  }
 private:
  int64_t axis_;
};

class SqueezeKernel : public Kernel {
 public:
  SqueezeKernel(const Attrs& a, bool unsqueeze) : unsqueeze_(unsqueeze) {
    a.allow({"axes"});
    if (a.has("axes")) axes_ = a.get_ints("axes"), has_axes_ = true;
  }
  int view_of(int) const override { return 0; }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "data");
    std::vector<int64_t> axes = axes_;
    bool have = has_axes_;
    if (const Tensor* t = io.input(1)) axes = read_int_tensor(*t, "axes"), have = true;
    Shape out;
    if (unsqueeze_) {
      if (!have) fail_shape("Unsqueeze needs axes");
      const int64_t r = x.ndim() + static_cast<int64_t>(axes.size());
      std::vector<char> mark(static_cast<size_t>(r), 0);
      for (int64_t a : axes) {
        const int64_t n = normalize_axis(a, r, "Unsqueeze");
        if (mark[static_cast<size_t>(n)]) fail_shape("Unsqueeze: repeated axis " + std::to_string(a));
        mark[static_cast<size_t>(n)] = 1;
      }
      size_t k = 0;
      for (int64_t i = 0; i < r; ++i) out.push_back(mark[static_cast<size_t>(i)] ? 1 : x.shape[k++]);
    } else {
      std::vector<char> mark(x.shape.size(), 0);
      if (have) {
        for (int64_t a : axes) {
          const int64_t n = normalize_axis(a, x.ndim(), "Squeeze");
          if (x.shape[static_cast<size_t>(n)] != 1) fail_shape("Squeeze: axis " + std::to_string(a) + " of " + x.desc() + " is not 1");
          mark[static_cast<size_t>(n)] = 1;
        }
      } else {
        for (size_t i = 0; i < x.shape.size(); ++i) mark[i] = x.shape[i] == 1;
      }
      for (size_t i = 0; i < x.shape.size(); ++i) {
        if (!mark[i]) out.push_back(x.shape[i]);
      }
    }
    io.alias_output(0, 0, out);
  }
 private:
  bool unsqueeze_, has_axes_ = false;
  std::vector<int64_t> axes_;
};

class IdentityKernel : public Kernel {
 public:
  IdentityKernel(const Attrs& a, bool dropout) : dropout_(dropout) {
    if (dropout) a.allow({"seed", "ratio"}); else a.allow({});
  }
  int view_of(int out) const override { return out == 0 ? 0 : -1; }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "input");
    if (dropout_) {
      if (const Tensor* t = io.input(2)) {
        if (t->numel() == 1 && t->dtype == DType::Bool && *t->ptr<bool>()) {
          throw std::invalid_argument("Dropout with training_mode=true is not supported natively");
        }
      }
    }
    io.alias_output(0, 0, x.shape);
    if (dropout_ && io.has_output(1)) {
      Tensor& mask = io.output(1, DType::Bool, x.shape);
      std::memset(mask.data, 1, mask.nbytes());
    }
  }
 private:
  bool dropout_;
};

class ShapeKernel : public Kernel {
 public:
  explicit ShapeKernel(const Attrs& a) {
    a.allow({"start", "end"});
    start_ = a.get_int("start", 0);
    end_ = a.get_int("end", std::numeric_limits<int64_t>::max());
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "data");
    const int64_t r = x.ndim();
    auto clampi = [r](int64_t v) { v = v < 0 ? v + r : v; return std::min(std::max<int64_t>(v, 0), r); };
    const int64_t s = clampi(start_), e = clampi(end_);
    const int64_t n = std::max<int64_t>(0, e - s);
    Tensor& y = io.output(0, DType::Int64, {n});
    for (int64_t i = 0; i < n; ++i) y.ptr<int64_t>()[i] = x.dim(s + i);
  }
 private:
  int64_t start_, end_;
};

class ConcatKernel : public Kernel {
 public:
  explicit ConcatKernel(const Attrs& a) {
    a.allow({"axis"});
    if (!a.has("axis")) a.fail("axis", "is required");
    axis_ = a.get_int("axis", 0);
  }
  void run(StepIO& io) const override {
    const Tensor& first = require_input(io, 0, "inputs[0]");
    const int64_t r = first.ndim();
    const int64_t axis = normalize_axis(axis_, r, "Concat");
    Shape out = first.shape;
    out[static_cast<size_t>(axis)] = 0;
    for (int i = 0; i < io.num_inputs(); ++i) {
      const Tensor& t = require_input(io, i, "inputs");
      bool ok = t.ndim() == r && t.dtype == first.dtype;
      for (int64_t d = 0; ok && d < r; ++d) ok = d == axis || t.dim(d) == first.dim(d);
      if (!ok) fail_shape("Concat: input " + std::to_string(i) + " " + t.desc() + " does not match " + first.desc());
      out[static_cast<size_t>(axis)] += t.dim(axis);
    }
    Tensor& y = io.output(0, first.dtype, out);
    const size_t es = dtype_size(first.dtype);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= out[static_cast<size_t>(d)];
    for (int64_t d = axis + 1; d < r; ++d) inner *= out[static_cast<size_t>(d)];
    const size_t out_row = static_cast<size_t>(out[static_cast<size_t>(axis)] * inner) * es;
    size_t off = 0;
    for (int i = 0; i < io.num_inputs(); ++i) {
      const Tensor& t = *io.input(i);
      const size_t chunk = static_cast<size_t>(t.dim(axis) * inner) * es;
      const char* src = static_cast<const char*>(t.data);
      char* dst = static_cast<char*>(y.data) + off;
      // The executor may have had the producer write this input straight
      // into its slab of the output (in-place concat): nothing to copy.
      if (!(outer == 1 && src == dst)) {
        for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + o * out_row, src + o * chunk, chunk);
      }
      off += chunk;
    }
  }
 private:
  int64_t axis_;
};

// Copies elements of `es` bytes: dst[i] = src[i * stride] (strides in elements).
inline void strided_copy(char* dst, const char* src, int64_t n, int64_t stride, size_t es) {
  if (stride == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n) * es);
    return;
  }
  switch (es) {
    case 4: for (int64_t i = 0; i < n; ++i) reinterpret_cast<uint32_t*>(dst)[i] = reinterpret_cast<const uint32_t*>(src)[i * stride]; break;
    case 8: for (int64_t i = 0; i < n; ++i) reinterpret_cast<uint64_t*>(dst)[i] = reinterpret_cast<const uint64_t*>(src)[i * stride]; break;
    case 2: for (int64_t i = 0; i < n; ++i) reinterpret_cast<uint16_t*>(dst)[i] = reinterpret_cast<const uint16_t*>(src)[i * stride]; break;
    default: for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * es, src + i * stride * es, es);
  }
}

// dst[i * ldd + j] = src[i + j * lds] for i < m, j < n: a 2-D transpose in
// 8 x 8 tiles, so every source line fetched serves eight output rows.
template <class T>
void transpose_tiles(const T* src, int64_t lds, T* dst, int64_t ldd, int64_t m, int64_t n) {
  constexpr int64_t kT = 8;
  for (int64_t i0 = 0; i0 < m; i0 += kT) {
    const int64_t i1 = std::min(m, i0 + kT);
    for (int64_t j0 = 0; j0 < n; j0 += kT) {
      const int64_t j1 = std::min(n, j0 + kT);
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t j = j0; j < j1; ++j) dst[i * ldd + j] = src[i + j * lds];
      }
    }
  }
}

// out[idx] = src[base + sum idx_d * stride_d]; dims/strides in elements,
// innermost last. Rows of the outermost dims are spread over the pool.
void gather_strided(const Shape& dims, const std::vector<int64_t>& strides, int64_t base, const char* src, char* dst,
                    size_t es, ThreadPool* pool) {
  const int64_t total = shape_numel(dims);
  if (total == 0) return;
  if (dims.empty()) {
    std::memcpy(dst, src + base * static_cast<int64_t>(es), es);
    return;
  }
  const int64_t n = dims.back(), st = strides.back();
  const size_t nd = dims.size();
  // A strided innermost dim with a unit-stride dim c further out (Transpose
  // moving the last axis, e.g. K -> K^T per head): element-wise gathering
  // would touch a new cache line per element, so copy 2-D tiles instead.
  size_t c = nd;
  for (size_t d = 0; d + 1 < nd; ++d) {
    if (strides[d] == 1 && dims[d] >= 4) c = d;
  }
  if (st != 1 && c < nd && n >= 4 && (es == 4 || es == 8)) {
    const int64_t m = dims[c];
    std::vector<int64_t> ostr(nd, 1);  // output strides (row-major over dims)
    for (size_t d = nd - 1; d-- > 0;) ostr[d] = ostr[d + 1] * dims[d + 1];
    const int64_t outer = total / (m * n);
    auto work = [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        int64_t rem = o, soff = base, doff = 0;
        for (size_t d = nd - 1; d-- > 0;) {
          if (d == c) continue;
          const int64_t i = rem % dims[d];
          rem /= dims[d];
          soff += i * strides[d];
          doff += i * ostr[d];
        }
        if (es == 4) {
          transpose_tiles(reinterpret_cast<const uint32_t*>(src) + soff, st, reinterpret_cast<uint32_t*>(dst) + doff,
                          ostr[c], m, n);
        } else {
          transpose_tiles(reinterpret_cast<const uint64_t*>(src) + soff, st, reinterpret_cast<uint64_t*>(dst) + doff,
                          ostr[c], m, n);
        }
      }
    };
    if (pool && total > 65536 && outer > 1) pool->parallel_for(outer, std::max<int64_t>(1, 16384 / (m * n)), work);
    else work(0, outer);
    return;
  }
  const int64_t rows = total / n;
  auto work = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rem = r, off = base;
      for (size_t d = dims.size() - 1; d-- > 0;) {
        off += (rem % dims[d]) * strides[d];
        rem /= dims[d];
      }
      strided_copy(dst + r * n * static_cast<int64_t>(es), src + off * static_cast<int64_t>(es), n, st, es);
    }
  };
  if (pool && total > 65536) pool->parallel_for(rows, std::max<int64_t>(1, 16384 / n), work);
  else work(0, rows);
}

class TransposeKernel : public Kernel {
 public:
  explicit TransposeKernel(const Attrs& a) {
    a.allow({"perm"});
    if (a.has("perm")) perm_ = a.get_ints("perm"), has_perm_ = true;
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "data");
    const int64_t r = x.ndim();
    std::vector<int64_t> perm = perm_;
    if (!has_perm_) {
      for (int64_t i = r - 1; i >= 0; --i) perm.push_back(i);
    }
    if (static_cast<int64_t>(perm.size()) != r) fail_shape("Transpose: perm " + shape_str(perm) + " does not match " + x.desc());
    std::vector<char> seen(static_cast<size_t>(r), 0);
    Shape out(static_cast<size_t>(r));
    std::vector<int64_t> in_strides(static_cast<size_t>(r), 1);
    for (int64_t d = r - 2; d >= 0; --d) in_strides[static_cast<size_t>(d)] = in_strides[static_cast<size_t>(d + 1)] * x.dim(d + 1);
    std::vector<int64_t> strides(static_cast<size_t>(r));
    for (int64_t i = 0; i < r; ++i) {
      const int64_t p = perm[static_cast<size_t>(i)] < 0 ? perm[static_cast<size_t>(i)] + r : perm[static_cast<size_t>(i)];
      if (p < 0 || p >= r || seen[static_cast<size_t>(p)]) fail_shape("Transpose: invalid perm " + shape_str(perm));
      seen[static_cast<size_t>(p)] = 1;
      out[static_cast<size_t>(i)] = x.dim(p);
      strides[static_cast<size_t>(i)] = in_strides[static_cast<size_t>(p)];
    }
    Tensor& y = io.output(0, x.dtype, out);
    // Merge output dims that are also adjacent (and in order) in the input.
    Shape dims;
    std::vector<int64_t> st;
    for (int64_t i = 0; i < r; ++i) {
      if (out[static_cast<size_t>(i)] == 1) continue;
      if (!dims.empty() && st.back() == strides[static_cast<size_t>(i)] * out[static_cast<size_t>(i)]) {
        dims.back() *= out[static_cast<size_t>(i)];
        st.back() = strides[static_cast<size_t>(i)];
        continue;
      }
      dims.push_back(out[static_cast<size_t>(i)]);
      st.push_back(strides[static_cast<size_t>(i)]);
    }
    gather_strided(dims, st, 0, static_cast<const char*>(x.data), static_cast<char*>(y.data), dtype_size(x.dtype), io.pool());
  }
 private:
  std::vector<int64_t> perm_;
  bool has_perm_ = false;
};

class SliceKernel : public Kernel {
 public:
  explicit SliceKernel(const Attrs& a) {
    a.allow({"starts", "ends", "axes", "steps"});
    has_attrs_ = a.has("starts");
    starts_ = a.get_ints("starts");
    ends_ = a.get_ints("ends");
    axes_ = a.get_ints("axes");
    steps_ = a.get_ints("steps");
    if (has_attrs_ && (starts_.size() != ends_.size())) a.fail("ends", "must have as many entries as starts");
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "data");
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps = steps_;
    if (!has_attrs_) {
      starts = read_int_tensor(require_input(io, 1, "starts"), "starts");
      ends = read_int_tensor(require_input(io, 2, "ends"), "ends");
      if (const Tensor* t = io.input(3)) axes = read_int_tensor(*t, "axes");
      if (const Tensor* t = io.input(4)) steps = read_int_tensor(*t, "steps");
    }
    const int64_t r = x.ndim();
    if (axes.empty()) for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
      fail_shape("Slice: starts/ends/axes/steps lengths differ");
    }
    std::vector<int64_t> st(static_cast<size_t>(r), 0), step(static_cast<size_t>(r), 1);
    Shape out = x.shape;
    for (size_t k = 0; k < starts.size(); ++k) {
      const int64_t a = normalize_axis(axes[k], r, "Slice");
      const int64_t dim = x.dim(a), s = steps[k];
      if (s == 0) fail_shape("Slice: step 0 on axis " + std::to_string(a));
      int64_t b = starts[k], e = ends[k];
      if (b < 0) b += dim;
      if (e < 0) e += dim;
      int64_t len;
      if (s > 0) {
        b = std::clamp<int64_t>(b, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        len = e > b ? (e - b + s - 1) / s : 0;
      } else {
        b = std::clamp<int64_t>(b, -1, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        len = b > e ? (b - e + (-s) - 1) / (-s) : 0;
      }
      st[static_cast<size_t>(a)] = b;
      step[static_cast<size_t>(a)] = s;
      out[static_cast<size_t>(a)] = len;
    }
    Tensor& y = io.output(0, x.dtype, out);
    std::vector<int64_t> in_strides(static_cast<size_t>(r), 1), strides(static_cast<size_t>(r));
    for (int64_t d = r - 2; d >= 0; --d) in_strides[static_cast<size_t>(d)] = in_strides[static_cast<size_t>(d + 1)] * x.dim(d + 1);
    int64_t base = 0;
    for (int64_t d = 0; d < r; ++d) {
      const size_t u = static_cast<size_t>(d);
      if (out[u] > 0) base += st[u] * in_strides[u];
      strides[u] = in_strides[u] * step[u];
    }
    gather_strided(out, strides, base, static_cast<const char*>(x.data), static_cast<char*>(y.data), dtype_size(x.dtype), io.pool());
  }
 private:
  bool has_attrs_;
  std::vector<int64_t> starts_, ends_, axes_, steps_;
};

class GatherKernel : public Kernel {
 public:
  explicit GatherKernel(const Attrs& a) {
    a.allow({"axis"});
    axis_ = a.get_int("axis", 0);
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "data");
    const Tensor& ind = require_input(io, 1, "indices");
    const int64_t axis = normalize_axis(axis_, x.ndim(), "Gather");
    const std::vector<int64_t> idx = read_int_tensor(ind, "indices");
    Shape out(x.shape.begin(), x.shape.begin() + axis);
    out.insert(out.end(), ind.shape.begin(), ind.shape.end());
    out.insert(out.end(), x.shape.begin() + axis + 1, x.shape.end());
    const int64_t dim = x.dim(axis);
    for (int64_t i : idx) {
      if (i < -dim || i >= dim) fail_shape("Gather: index " + std::to_string(i) + " out of range for axis of size " + std::to_string(dim));
    }
    Tensor& y = io.output(0, x.dtype, out);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
    for (int64_t d = axis + 1; d < x.ndim(); ++d) inner *= x.dim(d);
    const size_t chunk = static_cast<size_t>(inner) * dtype_size(x.dtype);
    const int64_t ni = static_cast<int64_t>(idx.size());
    const char* src = static_cast<const char*>(x.data);
    char* dst = static_cast<char*>(y.data);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < ni; ++j) {
        const int64_t i = idx[static_cast<size_t>(j)] < 0 ? idx[static_cast<size_t>(j)] + dim : idx[static_cast<size_t>(j)];
        std::memcpy(dst + (o * ni + j) * chunk, src + (o * dim + i) * chunk, chunk);
      }
    }
  }
 private:
  int64_t axis_;
};

std::unique_ptr<Kernel> make_reshape(const Attrs& a, int, int) { return std::make_unique<ReshapeKernel>(a); }
std::unique_ptr<Kernel> make_flatten(const Attrs& a, int, int) { return std::make_unique<FlattenKernel>(a); }
std::unique_ptr<Kernel> make_squeeze(const Attrs& a, int, int) { return std::make_unique<SqueezeKernel>(a, false); }
std::unique_ptr<Kernel> make_unsqueeze(const Attrs& a, int, int) { return std::make_unique<SqueezeKernel>(a, true); }
std::unique_ptr<Kernel> make_identity(const Attrs& a, int, int) { return std::make_unique<IdentityKernel>(a, false); }
std::unique_ptr<Kernel> make_dropout(const Attrs& a, int, int) { return std::make_unique<IdentityKernel>(a, true); }
std::unique_ptr<Kernel> make_shape(const Attrs& a, int, int) { return std::make_unique<ShapeKernel>(a); }
std::unique_ptr<Kernel> make_concat(const Attrs& a, int, int) { return std::make_unique<ConcatKernel>(a); }
std::unique_ptr<Kernel> make_transpose(const Attrs& a, int, int) { return std::make_unique<TransposeKernel>(a); }
std::unique_ptr<Kernel> make_slice(const Attrs& a, int, int) { return std::make_unique<SliceKernel>(a); }
std::unique_ptr<Kernel> make_gather(const Attrs& a, int, int) { return std::make_unique<GatherKernel>(a); }

}  // namespace

void register_shape_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Reshape", make_reshape, 1, 2, 1, 1});
  ops.push_back({"Flatten", make_flatten, 1, 1, 1, 1});
  ops.push_back({"Squeeze", make_squeeze, 1, 2, 1, 1});
  ops.push_back({"Unsqueeze", make_unsqueeze, 1, 2, 1, 1});
  ops.push_back({"Identity", make_identity, 1, 1, 1, 1});
  ops.push_back({"Dropout", make_dropout, 1, 3, 1, 2});
  ops.push_back({"Shape", make_shape, 1, 1, 1, 1});
  ops.push_back({"Concat", make_concat, 1, 1 << 20, 1, 1});
  ops.push_back({"Transpose", make_transpose, 1, 1, 1, 1});
  ops.push_back({"Slice", make_slice, 1, 5, 1, 1});
  ops.push_back({"Gather", make_gather, 2, 2, 1, 1});
}

}  // namespace infopt
