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
  PoolKernel(const Attrs& a, bool is_max) : max_(is_max) { win_.parse_pool(a, is_max); }

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
    // one row of the padded input (the vertical pass of a max row)
    float* t = scratch_floats(6, static_cast<size_t>(g.out[2] * g.s[2] + (g.k[2] - 1) * g.d[2] + 1));
    for (int64_t oz = 0; oz < g.out[0]; ++oz)
      for (int64_t oy = 0; oy < g.out[1]; ++oy) {
        const int64_t z0 = oz * g.s[0] - g.pb[0], y0 = oy * g.s[1] - g.pb[1];
        float* yrow = y + (oz * g.out[1] + oy) * g.out[2];
        if (max_) {
          max_row(x, g, z0, y0, yrow, t);
          continue;
        }
        const bool rows_inside = z0 >= 0 && z0 + (g.k[0] - 1) * g.d[0] < g.in[0] && y0 >= 0 &&
                                 y0 + (g.k[1] - 1) * g.d[1] < g.in[1];
        // outputs [lo, hi) of this row have windows wholly inside the input
        int64_t lo = g.out[2], hi = g.out[2];
        if (rows_inside) {
          lo = std::min<int64_t>(g.out[2], (g.pb[2] + g.s[2] - 1) / g.s[2]);
          const int64_t last = g.in[2] - 1 - (g.k[2] - 1) * g.d[2] + g.pb[2];  // max x0 + pb
          hi = last < 0 ? lo : std::max(lo, std::min<int64_t>(g.out[2], last / g.s[2] + 1));
        }
        for (int64_t ox = 0; ox < lo; ++ox) yrow[ox] = window(x, g, z0, y0, ox * g.s[2] - g.pb[2]);
        if (hi > lo) interior_avg_row(x, g, z0, y0, lo, hi, yrow);
        for (int64_t ox = hi; ox < g.out[2]; ++ox) yrow[ox] = window(x, g, z0, y0, ox * g.s[2] - g.pb[2]);
      }
  }

  // One output row of a max pool in two passes: the window's input rows (those inside the
  // input) are first reduced into one row t of the padded width, -inf in the padding, which
  // is contiguous and vectorises; then each output reduces its k[2] taps of t. That costs
  // k[0]*k[1] + k[2] operations per output instead of their product, with no bounds checks
  // (the per-window clipped loop cost as much as the rest on 13x13 to 28x28 maps). NaN
  // propagates as in ONNX.
  void max_row(const float* x, const Geometry& g, int64_t z0, int64_t y0, float* yrow, float* t) const {
    const int64_t s = g.s[2], d = g.d[2], n = g.out[2];
    const int64_t width = (n - 1) * s + (g.k[2] - 1) * d + 1;  // starts at input column -pb
    const int64_t c0 = std::min(width, g.pb[2]), c1 = std::max(c0, std::min(width, g.pb[2] + g.in[2]));
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    std::fill(t, t + width, kNegInf);
    for (int64_t kz = 0; kz < g.k[0]; ++kz) {
      const int64_t iz = z0 + kz * g.d[0];
      if (iz < 0 || iz >= g.in[0]) continue;
      for (int64_t ky = 0; ky < g.k[1]; ++ky) {
        const int64_t iy = y0 + ky * g.d[1];
        if (iy < 0 || iy >= g.in[1]) continue;
        const float* row = x + (iz * g.in[1] + iy) * g.in[2] - g.pb[2];
        for (int64_t j = c0; j < c1; ++j) t[j] = max_nan(t[j], row[j]);
      }
    }
    if (g.k[2] == 3 && d == 1 && s == 2) {
      for (int64_t i = 0; i < n; ++i) yrow[i] = max_nan(max_nan(t[2 * i], t[2 * i + 1]), t[2 * i + 2]);
    } else if (g.k[2] == 3 && d == 1 && s == 1) {
      for (int64_t i = 0; i < n; ++i) yrow[i] = max_nan(max_nan(t[i], t[i + 1]), t[i + 2]);
    } else {
      for (int64_t i = 0; i < n; ++i) {
        float m = t[i * s];
        for (int64_t kx = 1; kx < g.k[2]; ++kx) m = max_nan(m, t[i * s + kx * d]);
        yrow[i] = m;
      }
    }
  }

  // Average outputs lo..hi-1 of one row, all windows inside the input: the window loops run
  // outside the output loop so the inner loop is a branch-free sweep along the row (padding
  // never counts, so the average divides by the window size).
  void interior_avg_row(const float* x, const Geometry& g, int64_t z0, int64_t y0, int64_t lo, int64_t hi,
                        float* yrow) const {
    const int64_t n = hi - lo, s = g.s[2];
    for (int64_t i = 0; i < n; ++i) yrow[lo + i] = 0.f;
    for (int64_t kz = 0; kz < g.k[0]; ++kz)
      for (int64_t ky = 0; ky < g.k[1]; ++ky) {
        const float* row = x + ((z0 + kz * g.d[0]) * g.in[1] + y0 + ky * g.d[1]) * g.in[2] + lo * s - g.pb[2];
        for (int64_t kx = 0; kx < g.k[2]; ++kx) {
          const float* src = row + kx * g.d[2];
          float* out = yrow + lo;
          for (int64_t i = 0; i < n; ++i) out[i] += src[i * s];
        }
      }
    const float inv = 1.f / static_cast<float>(g.k[0] * g.k[1] * g.k[2]);
    for (int64_t i = 0; i < n; ++i) yrow[lo + i] *= inv;
  }

  // max that keeps a NaN from either side (a NaN already in m stays: v > NaN is false)
  static float max_nan(float m, float v) { return (v > m || v != v) ? v : m; }

  // Any window, clipped to the input; padding counted as ONNX's count_include_pad says.
  float window(const float* x, const Geometry& g, int64_t z0, int64_t y0, int64_t x0) const {
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
    if (max_) return mx;
    // count_include_pad counts explicit padding but not the extra ceil_mode overhang past it.
    const int64_t div = win_.count_include_pad ? padded : valid;
    return div > 0 ? sum / static_cast<float>(div) : 0.f;
  }

  bool max_;
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
