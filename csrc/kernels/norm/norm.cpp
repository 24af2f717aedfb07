// Softmax / LogSoftmax, LayerNormalization, BatchNormalization (inference) and LRN, float32.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/norm/norm.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace {

class SoftmaxKernel : public Kernel {
 public:
  std::vector<int> inplace_inputs() const override { return {0}; }
  SoftmaxKernel(const Attrs& a, bool log) : log_(log) {
    a.allow({"axis", "legacy_coerce_2d"});
    legacy_ = a.get_int("legacy_coerce_2d", 0) != 0;
    axis_ = a.get_int("axis", legacy_ ? 1 : -1);
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_f32(io, 0, "input");
    Tensor& y = io.output(0, DType::Float32, x.shape);
    if (x.numel() == 0) return;
    const int64_t r = x.ndim();
    // The reduced block is [len] with stride `inner`; opset<13 coerces to 2-D
    // at axis, i.e. reduces over all trailing dims at once (inner = 1).
    const int64_t axis = r == 0 ? 0 : normalize_axis(axis_, r, log_ ? "LogSoftmax" : "Softmax");
    int64_t outer = 1, len = 1, inner = 1;
    for (int64_t d = 0; d < r; ++d) {
      if (d < axis) outer *= x.dim(d);
      else if (d == axis || legacy_) len *= x.dim(d);
      else inner *= x.dim(d);
    }
    const float* xp = x.ptr<float>();
    float* yp = y.ptr<float>();
    const bool log = log_;
    if (inner == 1) {  // contiguous rows: the vectorised row kernel
      const auto& v = norm::variant_for(io.isa());
      io.pool()->parallel_for(outer, std::max<int64_t>(1, 8192 / std::max<int64_t>(len, 1)), [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) v.softmax_row(xp + t * len, yp + t * len, len, log);
      });
      return;
    }
    io.pool()->parallel_for(outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(len, 1)), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t o = t / inner, i = t % inner;
        const float* src = xp + o * len * inner + i;
        float* dst = yp + o * len * inner + i;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t k = 0; k < len; ++k) mx = std::max(mx, src[k * inner]);
        if (std::isinf(mx) && mx < 0) mx = 0.f;  // all -inf row: keep exp finite-safe
        double sum = 0.0;
        for (int64_t k = 0; k < len; ++k) {
          const float ev = std::exp(src[k * inner] - mx);
          if (!log) dst[k * inner] = ev;
          sum += ev;
        }
        if (log) {
          const float lse = static_cast<float>(std::log(sum)) + mx;
          for (int64_t k = 0; k < len; ++k) dst[k * inner] = src[k * inner] - lse;
        } else {
          const float inv = static_cast<float>(1.0 / sum);
          for (int64_t k = 0; k < len; ++k) dst[k * inner] *= inv;
        }
      }
    });
  }
 private:
  bool log_, legacy_;
  int64_t axis_;
};

// LayerNormalization (opset 17): normalises over dims [axis, rank); Scale and
// B must have one value per normalised element (or broadcast from one value).
// Optional outputs Mean and InvStdDev have shape X.shape[:axis] + [1]*(rank-axis).
class LayerNormKernel : public Kernel {
 public:
  std::vector<int> inplace_inputs() const override { return {0}; }
  explicit LayerNormKernel(const Attrs& a) {
    a.allow({"axis", "epsilon", "stash_type"});
    axis_ = a.get_int("axis", -1);
    eps_ = static_cast<float>(a.get_float("epsilon", 1e-5));
    if (a.get_int("stash_type", 1) != 1) a.fail("stash_type", "must be 1 (float32)");
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_f32(io, 0, "X");
    const Tensor& sc = require_f32(io, 1, "Scale");
    const Tensor* b = io.input(2);
    const int64_t r = x.ndim();
    if (r == 0) fail_shape("LayerNormalization needs rank >= 1, got " + x.desc());
    const int64_t axis = normalize_axis(axis_, r, "LayerNormalization");
    int64_t outer = 1, len = 1;
    for (int64_t d = 0; d < r; ++d) (d < axis ? outer : len) *= x.dim(d);
    auto param = [&](const Tensor& t, const char* name, std::vector<float>& bcast) -> const float* {
      if (t.dtype != DType::Float32) fail_shape(std::string("LayerNormalization ") + name + " must be float32, got " + t.desc());
      if (t.numel() == len) return t.ptr<float>();
      if (t.numel() == 1) {
        bcast.assign(static_cast<size_t>(len), *t.ptr<float>());
        return bcast.data();
      }
      fail_shape(std::string("LayerNormalization ") + name + " " + t.desc() + " does not match the normalised size " +
                 std::to_string(len) + " of X " + x.desc());
    };
    std::vector<float> sb, bb;
    const float* scale = param(sc, "Scale", sb);
    const float* bias = b ? param(*b, "B", bb) : nullptr;
    Tensor& y = io.output(0, DType::Float32, x.shape);
    Shape stat_shape(x.shape.begin(), x.shape.begin() + axis);
    stat_shape.resize(static_cast<size_t>(r), 1);
    float* mean = io.has_output(1) ? io.output(1, DType::Float32, stat_shape).ptr<float>() : nullptr;
    float* inv = io.has_output(2) ? io.output(2, DType::Float32, stat_shape).ptr<float>() : nullptr;
    const float* xp = x.ptr<float>();
    float* yp = y.ptr<float>();
    const auto& v = norm::variant_for(io.isa());
    const float eps = eps_;
    io.pool()->parallel_for(outer, std::max<int64_t>(1, 8192 / std::max<int64_t>(len, 1)), [&](int64_t b0, int64_t b1) {
      for (int64_t t = b0; t < b1; ++t) {
        v.layernorm_row(xp + t * len, yp + t * len, len, scale, bias, eps, mean ? mean + t : nullptr, inv ? inv + t : nullptr);
      }
    });
  }
 private:
  int64_t axis_;
  float eps_;
};

class BatchNormKernel : public Kernel {
 public:
  std::vector<int> inplace_inputs() const override { return {0}; }
  explicit BatchNormKernel(const Attrs& a) {
    a.allow({"epsilon", "momentum", "training_mode", "spatial"});
    eps_ = static_cast<float>(a.get_float("epsilon", 1e-5));
    if (a.get_int("training_mode", 0) != 0) a.fail("training_mode", "must be 0 (inference only)");
    if (a.get_int("spatial", 1) != 1) a.fail("spatial", "must be 1");
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_f32(io, 0, "X");
    if (x.ndim() < 2) fail_shape("BatchNormalization needs rank >= 2, got " + x.desc());
    const int64_t C = x.dim(1);
    const char* names[] = {"scale", "B", "input_mean", "input_var"};
    const float* p[4];
    for (int k = 0; k < 4; ++k) {
      const Tensor& t = require_f32(io, k + 1, names[k]);
      if (t.numel() != C) fail_shape(std::string("BatchNormalization ") + names[k] + " " + t.desc() + " does not match C=" + std::to_string(C));
      p[k] = t.ptr<float>();
    }
    Tensor& y = io.output(0, DType::Float32, x.shape);
    const int64_t N = x.dim(0), inner = x.numel() / std::max<int64_t>(1, N * C);
    std::vector<float> sc(static_cast<size_t>(C)), sh(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
      sc[static_cast<size_t>(c)] = p[0][c] / std::sqrt(p[3][c] + eps_);
      sh[static_cast<size_t>(c)] = p[1][c] - p[2][c] * sc[static_cast<size_t>(c)];
    }
    const float* xp = x.ptr<float>();
    float* yp = y.ptr<float>();
    io.pool()->parallel_for(N * C, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float s = sc[static_cast<size_t>(t % C)], h = sh[static_cast<size_t>(t % C)];
        const float* src = xp + t * inner;
        float* dst = yp + t * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] = src[i] * s + h;
      }
    });
  }
 private:
  float eps_;
};

class LrnKernel : public Kernel {
 public:
  explicit LrnKernel(const Attrs& a) {
    a.allow({"alpha", "beta", "bias", "size"});
    alpha_ = static_cast<float>(a.get_float("alpha", 1e-4));
    beta_ = static_cast<float>(a.get_float("beta", 0.75));
    bias_ = static_cast<float>(a.get_float("bias", 1.0));
    if (!a.has("size")) a.fail("size", "is required");
    size_ = a.get_int("size", 1);
    if (size_ < 1) a.fail("size", "must be positive");
  }
  void run(StepIO& io) const override {
    const Tensor& x = require_f32(io, 0, "X");
    if (x.ndim() < 2) fail_shape("LRN needs rank >= 2, got " + x.desc());
    Tensor& y = io.output(0, DType::Float32, x.shape);
    const int64_t N = x.dim(0), C = x.dim(1), inner = x.numel() / std::max<int64_t>(1, N * C);
    const int64_t lo = (size_ - 1) / 2, hi = size_ - 1 - lo;  // window [c - floor, c + ceil]
    const float* xp = x.ptr<float>();
    float* yp = y.ptr<float>();
    const float scale = alpha_ / static_cast<float>(size_);
    const auto& v = norm::variant_for(io.isa());
    // Tasks: (image, channel, run of kLrnRun positions); each reads its channel window's rows.
    constexpr int64_t kLrnRun = 4096;
    const int64_t runs = (inner + kLrnRun - 1) / kLrnRun;
    io.pool()->parallel_for(N * C * runs, 1, [&](int64_t b, int64_t e) {
      std::vector<const float*> win;
      for (int64_t t = b; t < e; ++t) {
        const int64_t row = t / runs, i0 = (t % runs) * kLrnRun, len = std::min(kLrnRun, inner - i0);
        const int64_t n = row / C, c = row % C;
        const int64_t c0 = std::max<int64_t>(0, c - lo), c1 = std::min<int64_t>(C - 1, c + hi);
        win.clear();
        for (int64_t k = c0; k <= c1; ++k) win.push_back(xp + (n * C + k) * inner + i0);
        v.lrn_run(win.data(), static_cast<int>(win.size()), xp + row * inner + i0, yp + row * inner + i0, len, bias_,
                  scale, beta_);
      }
    });
  }

 private:
  float alpha_, beta_, bias_;
  int64_t size_;
};

std::unique_ptr<Kernel> make_softmax(const Attrs& a, int, int) { return std::make_unique<SoftmaxKernel>(a, false); }
std::unique_ptr<Kernel> make_logsoftmax(const Attrs& a, int, int) { return std::make_unique<SoftmaxKernel>(a, true); }
std::unique_ptr<Kernel> make_layernorm(const Attrs& a, int, int) { return std::make_unique<LayerNormKernel>(a); }
std::unique_ptr<Kernel> make_bn(const Attrs& a, int, int) { return std::make_unique<BatchNormKernel>(a); }
std::unique_ptr<Kernel> make_lrn(const Attrs& a, int, int) { return std::make_unique<LrnKernel>(a); }

}  // namespace

void register_norm_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Softmax", make_softmax, 1, 1, 1, 1});
  ops.push_back({"LogSoftmax", make_logsoftmax, 1, 1, 1, 1});
  ops.push_back({"LayerNormalization", make_layernorm, 2, 3, 1, 3});
  ops.push_back({"BatchNormalization", make_bn, 5, 5, 1, 1});
  ops.push_back({"LRN", make_lrn, 1, 1, 1, 1});
}

}  // namespace infopt
