// GatherElements and GatherND: index-driven byte copies, any element type.
#include <cstring>
#include <string>

#include "kernels/kernel.h"

namespace infopt {
namespace {

// Indices as int64 (ONNX allows int32 or int64), negative values wrapped by `dim`.
int64_t index_at(const Tensor& ind, int64_t k) {
  if (ind.dtype == DType::Int64) return ind.ptr<const int64_t>()[k];
  if (ind.dtype == DType::Int32) return ind.ptr<const int32_t>()[k];
  fail_shape("indices must be int32 or int64, got " + ind.desc());
}

int64_t wrap(int64_t i, int64_t dim, const char* op) {
  if (i < -dim || i >= dim) {
    fail_shape(std::string(op) + ": index " + std::to_string(i) + " out of range for axis of size " +
               std::to_string(dim));
  }
  return i < 0 ? i + dim : i;
}

class GatherElementsKernel : public Kernel {
 public:
  explicit GatherElementsKernel(const Attrs& a) {
    a.allow({"axis"});
    axis_ = a.get_int("axis", 0);
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "data");
    const Tensor& ind = require_input(io, 1, "indices");
    if (ind.ndim() != x.ndim()) {
      fail_shape("GatherElements: indices " + ind.desc() + " must have the rank of data " + x.desc());
    }
    const int64_t axis = normalize_axis(axis_, x.ndim(), "GatherElements");
    Tensor& y = io.output(0, x.dtype, ind.shape);
    const size_t esize = dtype_size(x.dtype);
    // strides of data, and a running multi-index over the indices tensor
    std::vector<int64_t> xstride(static_cast<size_t>(x.ndim()), 1), pos(static_cast<size_t>(x.ndim()), 0);
    for (int64_t d = x.ndim() - 2; d >= 0; --d) xstride[d] = xstride[d + 1] * x.dim(d + 1);
    const char* src = static_cast<const char*>(x.data);
    char* dst = static_cast<char*>(y.data);
    const int64_t n = ind.numel();
    for (int64_t k = 0; k < n; ++k) {
      int64_t offset = 0;
      for (int64_t d = 0; d < x.ndim(); ++d) {
        const int64_t i = d == axis ? wrap(index_at(ind, k), x.dim(d), "GatherElements") : pos[d];
        if (d != axis && i >= x.dim(d)) fail_shape("GatherElements: indices " + ind.desc() + " exceed data " + x.desc());
        offset += i * xstride[d];
      }
      std::memcpy(dst + k * esize, src + offset * esize, esize);
      for (int64_t d = ind.ndim() - 1; d >= 0 && ++pos[d] == ind.dim(d); --d) pos[d] = 0;
    }
  }

 private:
  int64_t axis_;
};

class GatherNDKernel : public Kernel {
 public:
  explicit GatherNDKernel(const Attrs& a) {
    a.allow({"batch_dims"});
    batch_dims_ = a.get_int("batch_dims", 0);
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "data");
    const Tensor& ind = require_input(io, 1, "indices");
    const int64_t b = batch_dims_, r = x.ndim(), q = ind.ndim();
    if (q < 1 || b < 0 || b >= q || b >= r) fail_shape("GatherND: bad batch_dims for data " + x.desc() + ", indices " + ind.desc());
    const int64_t last = ind.dim(q - 1);
    if (last < 1 || last > r - b) fail_shape("GatherND: indices " + ind.desc() + " index too many dims of data " + x.desc());
    for (int64_t d = 0; d < b; ++d) {
      if (x.dim(d) != ind.dim(d)) fail_shape("GatherND: batch dims of " + ind.desc() + " and " + x.desc() + " differ");
    }
    Shape out(ind.shape.begin(), ind.shape.end() - 1);
    out.insert(out.end(), x.shape.begin() + b + last, x.shape.end());
    Tensor& y = io.output(0, x.dtype, out);
    int64_t slice = 1, batch = 1, per_batch = 1;
    for (int64_t d = b + last; d < r; ++d) slice *= x.dim(d);
    for (int64_t d = 0; d < b; ++d) batch *= x.dim(d);
    for (int64_t d = b; d < q - 1; ++d) per_batch *= ind.dim(d);
    int64_t batch_stride = 1;  // elements of data per batch entry
    for (int64_t d = b; d < r; ++d) batch_stride *= x.dim(d);
    const size_t chunk = static_cast<size_t>(slice) * dtype_size(x.dtype);
    const char* src = static_cast<const char*>(x.data);
    char* dst = static_cast<char*>(y.data);
    for (int64_t bi = 0; bi < batch; ++bi) {
      for (int64_t j = 0; j < per_batch; ++j) {
        const int64_t base = (bi * per_batch + j) * last;
        int64_t offset = 0;
        for (int64_t t = 0; t < last; ++t) {
          const int64_t dim = x.dim(b + t);
          offset = offset * dim + wrap(index_at(ind, base + t), dim, "GatherND");
        }
        std::memcpy(dst + (bi * per_batch + j) * chunk, src + (bi * batch_stride + offset * slice) * dtype_size(x.dtype), chunk);
      }
    }
  }

 private:
  int64_t batch_dims_;
};

std::unique_ptr<Kernel> make_gather_elements(const Attrs& a, int, int) { return std::make_unique<GatherElementsKernel>(a); }
std::unique_ptr<Kernel> make_gather_nd(const Attrs& a, int, int) { return std::make_unique<GatherNDKernel>(a); }

}  // namespace

void register_gather_ops(std::vector<OpDef>& ops) {
  ops.push_back({"GatherElements", make_gather_elements, 2, 2, 1, 1});
  ops.push_back({"GatherND", make_gather_nd, 2, 2, 1, 1});
}

}  // namespace infopt
