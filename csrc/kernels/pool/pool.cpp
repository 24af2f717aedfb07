// MaxPool, AveragePool (1-3 spatial dims) and the global pools, float32.
// Parallel over N x C planes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "kernels/conv/conv_geometry.h"
#include "kernels/kernel.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace {

class PoolKernel : public Kernel {
 public:
  PoolKernel(const Attrs& a, bool is_max) : max_(is_max) {
    if (is_max) {
      a.allow({"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
    } else {
      a.allow({"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"});
      count_include_pad_ = a.get_int("count_include_pad", 0) != 0;
    }
    win_.parse(a, true);
  }

  void run(StepIO& io) const override {
    const Tensor& X = require_f32(io, 0, "X");
    if (X.ndim() < 3) fail_shape("pooling needs rank >= 3, got " + X.desc());
    const Geometry g = make_geometry(win_, Shape(X.shape.begin() + 2, X.shape.end()), win_.kernel_shape,
                                     max_ ? "MaxPool" : "AveragePool");
    Shape yshape{X.dim(0), X.dim(1)};
    for (int i = 3 - g.nd; i < 3; ++i) yshape.push_back(g.out[i]);
    Tensor& Y = io.output(0, DType::Float32, yshape);
    if (io.has_output(1)) throw std::invalid_argument("MaxPool Indices output is not supported natively");
    const int64_t planes = X.dim(0) * X.dim(1), Sin = g.in_size(), Sout = g.out_size();
    const float* xp = X.ptr<float>();
    float* yp = Y.ptr<float>();
    io.pool()->parallel_for(planes, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) plane(xp + p * Sin, yp + p * Sout, g);
    });
  }

 private:
  void plane(const float* x, float* y, const Geometry& g) const {
    for (int64_t oz = 0; oz < g.out[0]; ++oz)
      for (int64_t oy = 0; oy < g.out[1]; ++oy)
        for (int64_t ox = 0; ox < g.out[2]; ++ox) {
          const int64_t z0 = oz * g.s[0] - g.pb[0], y0 = oy * g.s[1] - g.pb[1], x0 = ox * g.s[2] - g.pb[2];
          float mx = -std::numeric_limits<float>::infinity();
          float sum = 0.f;
          int64_t valid = 0, padded = 0;
          for (int64_t kz = 0; kz < g.k[0]; ++kz) {
            const int64_t iz = z0 + kz * g.d[0];
            const bool zin = iz >= 0 && iz < g.in[0];
            const bool zpad = iz >= -g.pb[0] && iz < g.in[0] + g.pe[0];
            for (int64_t ky = 0; ky < g.k[1]; ++ky) {
              const int64_t iy = y0 + ky * g.d[1];
              const bool yin = zin && iy >= 0 && iy < g.in[1];
              const bool ypad = zpad && iy >= -g.pb[1] && iy < g.in[1] + g.pe[1];
              for (int64_t kx = 0; kx < g.k[2]; ++kx) {
                const int64_t ix = x0 + kx * g.d[2];
                if (ypad && ix >= -g.pb[2] && ix < g.in[2] + g.pe[2]) ++padded;
                if (!yin || ix < 0 || ix >= g.in[2]) continue;
                const float v = x[(iz * g.in[1] + iy) * g.in[2] + ix];
                ++valid;
                if (max_) {
                  if (v > mx || v != v) mx = v;
                } else {
                  sum += v;
                }
              }
            }
          }
          float r;
          if (max_) {
            r = mx;
          } else {
            // count_include_pad counts explicit padding but not the extra
            // ceil_mode overhang past it.
            const int64_t div = count_include_pad_ ? padded : valid;
            r = div > 0 ? sum / static_cast<float>(div) : 0.f;
          }
          y[(oz * g.out[1] + oy) * g.out[2] + ox] = r;
        }
  }

  bool max_;
  bool count_include_pad_ = false;
  WindowAttrs win_;
};

class GlobalPoolKernel : public Kernel {
 public:
  GlobalPoolKernel(const Attrs& a, bool is_max) : max_(is_max) { a.allow({}); }
  void run(StepIO& io) const override {
    const Tensor& X = require_f32(io, 0, "X");
    if (X.ndim() < 2) fail_shape("global pooling needs rank >= 2, got " + X.desc());
    Shape yshape = X.shape;
    for (size_t i = 2; i < yshape.size(); ++i) yshape[i] = 1;
    Tensor& Y = io.output(0, DType::Float32, yshape);
    const int64_t planes = X.dim(0) * X.dim(1), S = planes ? X.numel() / planes : 0;
    const float* xp = X.ptr<float>();
    float* yp = Y.ptr<float>();
    io.pool()->parallel_for(planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(S, 1)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const float* src = xp + p * S;
        if (max_) {
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t i = 0; i < S; ++i) m = (src[i] > m || src[i] != src[i]) ? src[i] : m;
          yp[p] = m;
        } else {
          double s = 0.0;
          for (int64_t i = 0; i < S; ++i) s += src[i];
          yp[p] = static_cast<float>(s / static_cast<double>(S));
        }
      }
    });
  }
 private:
  bool max_;
};

std::unique_ptr<Kernel> make_maxpool(const Attrs& a, int, int) { return std::make_unique<PoolKernel>(a, true); }
std::unique_ptr<Kernel> make_avgpool(const Attrs& a, int, int) { return std::make_unique<PoolKernel>(a, false); }
std::unique_ptr<Kernel> make_gmaxpool(const Attrs& a, int, int) { return std::make_unique<GlobalPoolKernel>(a, true); }
std::unique_ptr<Kernel> make_gavgpool(const Attrs& a, int, int) { return std::make_unique<GlobalPoolKernel>(a, false); }

}  // namespace

void register_pool_ops(std::vector<OpDef>& ops) {
  ops.push_back({"MaxPool", make_maxpool, 1, 1, 1, 2});
  ops.push_back({"AveragePool", make_avgpool, 1, 1, 1, 1});
  ops.push_back({"GlobalMaxPool", make_gmaxpool, 1, 1, 1, 1});
  ops.push_back({"GlobalAveragePool", make_gavgpool, 1, 1, 1, 1});
}

}  // namespace infopt
