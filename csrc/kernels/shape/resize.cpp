// Resize (opset 10 two-input form and 11+ X, roi, scales, sizes): nearest
// (any dtype; round_prefer_floor / round_prefer_ceil / floor / ceil) and
// linear (float32, separable over every resized axis, edge-clamped), with the
// half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners and
// asymmetric coordinate transformations. Output size is floor(in * scale)
// from scales, or sizes; the transformation uses the given scale (or
// out / in when sizes are given), as in the ONNX reference.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "kernels/kernel.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace {

enum class Coord { HalfPixel, HalfPixelSymmetric, PytorchHalfPixel, AlignCorners, Asymmetric };
enum class Nearest { RoundPreferFloor, RoundPreferCeil, Floor, Ceil };

class ResizeKernel : public Kernel {
 public:
  ResizeKernel(const Attrs& a, int num_inputs) : legacy_(num_inputs == 2) {
    a.allow({"mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside",
             "extrapolation_value", "antialias", "axes", "keep_aspect_ratio_policy"});
    const std::string mode = a.get_str("mode", "nearest");
    if (mode == "nearest") linear_ = false;
    else if (mode == "linear" || mode == "bilinear" || mode == "trilinear") linear_ = true;
    else a.fail("mode", "'" + mode + "' is not supported natively (nearest, linear)");
    // Opset 10 Resize (and Upsample) sample at x / scale and pick floor for nearest.
    const std::string ct = a.get_str("coordinate_transformation_mode", legacy_ ? "asymmetric" : "half_pixel");
    if (ct == "half_pixel") coord_ = Coord::HalfPixel;
    else if (ct == "half_pixel_symmetric") coord_ = Coord::HalfPixelSymmetric;
    else if (ct == "pytorch_half_pixel") coord_ = Coord::PytorchHalfPixel;
    else if (ct == "align_corners") coord_ = Coord::AlignCorners;
    else if (ct == "asymmetric") coord_ = Coord::Asymmetric;
    else a.fail("coordinate_transformation_mode", "'" + ct + "' is not supported natively");
    const std::string nm = a.get_str("nearest_mode", legacy_ ? "floor" : "round_prefer_floor");
    if (nm == "round_prefer_floor") nearest_ = Nearest::RoundPreferFloor;
    else if (nm == "round_prefer_ceil") nearest_ = Nearest::RoundPreferCeil;
    else if (nm == "floor") nearest_ = Nearest::Floor;
    else if (nm == "ceil") nearest_ = Nearest::Ceil;
    else a.fail("nearest_mode", "has unsupported value '" + nm + "'");
    if (a.get_int("antialias", 0) != 0) a.fail("antialias", "must be 0");
    if (a.get_str("keep_aspect_ratio_policy", "stretch") != "stretch") a.fail("keep_aspect_ratio_policy", "must be 'stretch'");
    axes_ = a.get_ints("axes");
  }

  void run(StepIO& io) const override {
    const Tensor& x = require_input(io, 0, "X");
    const int64_t r = x.ndim();
    if (r < 1) fail_shape("Resize needs rank >= 1, got " + x.desc());
    const Tensor* scales_t = legacy_ ? io.input(1) : io.input(2);
    const Tensor* sizes_t = legacy_ ? nullptr : io.input(3);
    if (scales_t && scales_t->numel() == 0) scales_t = nullptr;
    if (sizes_t && sizes_t->numel() == 0) sizes_t = nullptr;
    if (!scales_t == !sizes_t) fail_shape("Resize needs exactly one of scales and sizes");
    std::vector<int64_t> axes = axes_;
    if (axes.empty()) for (int64_t d = 0; d < r; ++d) axes.push_back(d);
    std::vector<double> scale(static_cast<size_t>(r), 1.0);
    Shape out = x.shape;
    const size_t na = axes.size();
    if (scales_t) {
      if (scales_t->dtype != DType::Float32 || static_cast<size_t>(scales_t->numel()) != na) {
        fail_shape("Resize: scales " + scales_t->desc() + " must be float32 with one value per axis of " + x.desc());
      }
      for (size_t i = 0; i < na; ++i) {
        const size_t d = static_cast<size_t>(normalize_axis(axes[i], r, "Resize"));
        const double s = scales_t->ptr<float>()[i];
        if (!(s > 0)) fail_shape("Resize: scales must be positive");
        scale[d] = s;
        out[d] = static_cast<int64_t>(std::floor(static_cast<double>(x.shape[d]) * s));
      }
    } else {
      if (sizes_t->dtype != DType::Int64 || static_cast<size_t>(sizes_t->numel()) != na) {
        fail_shape("Resize: sizes " + sizes_t->desc() + " must be int64 with one value per axis of " + x.desc());
      }
      for (size_t i = 0; i < na; ++i) {
        const size_t d = static_cast<size_t>(normalize_axis(axes[i], r, "Resize"));
        out[d] = sizes_t->ptr<int64_t>()[i];
        if (out[d] < 0) fail_shape("Resize: negative size");
        scale[d] = x.shape[d] ? static_cast<double>(out[d]) / static_cast<double>(x.shape[d]) : 1.0;
      }
    }
    Tensor& y = io.output(0, linear_ ? DType::Float32 : x.dtype, out);
    if (y.numel() == 0) return;
    if (x.numel() == 0) fail_shape("Resize: cannot resize the empty tensor " + x.desc());
    if (linear_ && x.dtype != DType::Float32) fail_shape("Resize linear needs float32, got " + x.desc());
    // Per axis: the two source indices and the weight of the second.
    std::vector<std::vector<int64_t>> i0(static_cast<size_t>(r)), i1(static_cast<size_t>(r));
    std::vector<std::vector<float>> w1(static_cast<size_t>(r));
    std::vector<int> active;  // axes that actually interpolate
    for (int64_t d = 0; d < r; ++d) {
      const size_t u = static_cast<size_t>(d);
      const int64_t in = x.dim(d), on = out[u];
      const bool identity = in == on && scale[u] == 1.0;
      i0[u].resize(static_cast<size_t>(on));
      i1[u].resize(static_cast<size_t>(on));
      w1[u].assign(static_cast<size_t>(on), 0.f);
      bool any_w = false;
      for (int64_t o = 0; o < on; ++o) {
        const size_t uo = static_cast<size_t>(o);
        if (identity) {
          i0[u][uo] = i1[u][uo] = o;
          continue;
        }
        const double xo = original(o, in, on, scale[u]);
        if (!linear_) {
          i0[u][uo] = i1[u][uo] = std::clamp<int64_t>(pick(xo), 0, in - 1);
        } else {
          const double f = std::floor(xo);
          const int64_t a = static_cast<int64_t>(f);
          i0[u][uo] = std::clamp<int64_t>(a, 0, in - 1);
          i1[u][uo] = std::clamp<int64_t>(a + 1, 0, in - 1);
          w1[u][uo] = static_cast<float>(xo - f);
          any_w = any_w || (w1[u][uo] != 0.f && i0[u][uo] != i1[u][uo]);
        }
      }
      if (any_w) active.push_back(static_cast<int>(d));
    }
    std::vector<int64_t> st(static_cast<size_t>(r), 1);
    for (int64_t d = r - 2; d >= 0; --d) st[static_cast<size_t>(d)] = st[static_cast<size_t>(d + 1)] * x.dim(d + 1);
    const int64_t W = r ? out.back() : 1;
    const int64_t rows = y.numel() / W;
    const size_t es = dtype_size(x.dtype);
    const char* xp = static_cast<const char*>(x.data);
    char* yp = static_cast<char*>(y.data);
    const size_t last = static_cast<size_t>(r - 1);
    const bool last_active = !active.empty() && active.back() == static_cast<int>(r - 1);
    auto work = [&](int64_t r0, int64_t r1) {
      std::vector<int64_t> idx(static_cast<size_t>(r));
      for (int64_t row = r0; row < r1; ++row) {
        int64_t rem = row;
        for (int64_t d = r - 2; d >= 0; --d) {
          idx[static_cast<size_t>(d)] = rem % out[static_cast<size_t>(d)];
          rem /= out[static_cast<size_t>(d)];
        }
        if (!linear_) {
          int64_t off = 0;
          for (int64_t d = 0; d + 1 < r; ++d) off += i0[static_cast<size_t>(d)][static_cast<size_t>(idx[static_cast<size_t>(d)])] * st[static_cast<size_t>(d)];
          char* dst = yp + row * W * static_cast<int64_t>(es);
          for (int64_t o = 0; o < W; ++o) {
            std::memcpy(dst + o * static_cast<int64_t>(es), xp + (off + i0[last][static_cast<size_t>(o)]) * static_cast<int64_t>(es), es);
          }
          continue;
        }
        // Linear: sum over the 2^k corners of the active outer axes, then the
        // innermost axis (active or not) per output column.
        const float* xf = x.ptr<float>();
        float* dst = y.ptr<float>() + row * W;
        std::fill(dst, dst + W, 0.f);
        const size_t nouter = active.size() - (last_active ? 1 : 0);
        for (int64_t c = 0; c < (int64_t{1} << nouter); ++c) {
          int64_t off = 0;
          float wt = 1.f;
          size_t k = 0;
          for (int64_t d = 0; d + 1 < r; ++d) {
            const size_t u = static_cast<size_t>(d);
            const size_t o = static_cast<size_t>(idx[u]);
            if (k < nouter && active[k] == static_cast<int>(d)) {
              const bool hi = (c >> k) & 1;
              off += (hi ? i1[u][o] : i0[u][o]) * st[u];
              wt *= hi ? w1[u][o] : 1.f - w1[u][o];
              ++k;
            } else {
              off += i0[u][o] * st[u];
            }
          }
          if (wt == 0.f) continue;
          const float* src = xf + off;
          for (int64_t o = 0; o < W; ++o) {
            const size_t uo = static_cast<size_t>(o);
            const float v = last_active ? src[i0[last][uo]] + w1[last][uo] * (src[i1[last][uo]] - src[i0[last][uo]])
                                        : src[i0[last][uo]];
            dst[o] += wt * v;
          }
        }
      }
    };
    if (y.numel() > 32768) io.pool()->parallel_for(rows, std::max<int64_t>(1, 8192 / W), work);
    else work(0, rows);
  }

 private:
  double original(int64_t o, int64_t in, int64_t on, double s) const {
    const double xo = static_cast<double>(o);
    // The ONNX reference uses the unrounded resized length in * scale here.
    const double lr = static_cast<double>(in) * s;
    (void)on;
    switch (coord_) {
      case Coord::HalfPixel: return (xo + 0.5) / s - 0.5;
      case Coord::HalfPixelSymmetric: {
        const double adj = static_cast<double>(on) / lr;
        const double center = static_cast<double>(in) / 2.0;
        return center * (1.0 - adj) + (xo + 0.5) / s - 0.5;
      }
      case Coord::PytorchHalfPixel: return lr > 1 ? (xo + 0.5) / s - 0.5 : 0.0;
      case Coord::AlignCorners: return lr == 1 ? 0.0 : xo * static_cast<double>(in - 1) / (lr - 1);
      case Coord::Asymmetric: return xo / s;
    }
    return xo;
  }
  int64_t pick(double v) const {
    switch (nearest_) {
      case Nearest::RoundPreferFloor: return static_cast<int64_t>(v == std::floor(v) + 0.5 ? std::floor(v) : std::round(v));
      case Nearest::RoundPreferCeil: return static_cast<int64_t>(std::floor(v + 0.5));
      case Nearest::Floor: return static_cast<int64_t>(std::floor(v));
      case Nearest::Ceil: return static_cast<int64_t>(std::ceil(v));
    }
    return 0;
  }
  bool legacy_, linear_ = false;
  Coord coord_ = Coord::HalfPixel;
  Nearest nearest_ = Nearest::RoundPreferFloor;
  std::vector<int64_t> axes_;
};

std::unique_ptr<Kernel> make_resize(const Attrs& a, int n_in, int) { return std::make_unique<ResizeKernel>(a, n_in); }

}  // namespace

void register_resize_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Resize", make_resize, 2, 4, 1, 1});
}

}  // namespace infopt
