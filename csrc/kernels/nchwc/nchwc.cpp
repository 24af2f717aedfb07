// NCHWc native ops: infopt.ReorderToNchwc / ReorderFromNchwc, infopt.NchwcConv (direct conv,
// 2-D, group 1; NCHWc or plain NCHW input), infopt.NchwcMaxPool / NchwcAveragePool /
// NchwcGlobalAveragePool, infopt.NchwcScaleShift (per-channel affine + activation: an inference
// BatchNormalization). The layout and the micro-kernel are described in nchwc.h.
//
// NchwcConv: a 3x3 stride-1 conv with constant weights may take Winograd (nchwc_winograd.cpp,
// chosen in prepare()). Otherwise padded inputs are first copied into a zero-padded scratch (in
// parallel over planes) so the micro-kernel needs no bounds checks; the copy is skipped
// without padding.
// Tasks are (image, 16-channel output block, output pixel range), ~4 per thread, none under
// ~0.25 MFLOP, claimed dynamically; a 1x1 conv with an input beyond L2 instead takes stretches
// of pixels through every block (see run()).
#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

#include "kernels/conv/conv_geometry.h"
#include "kernels/gemm/gemm.h"
#include "kernels/kernel.h"
#include "kernels/nchwc/nchwc.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace nchwc {

int64_t packed_size(int64_t M, int64_t C, int64_t KH, int64_t KW) {
  return M * blocks_of(C) * KH * KW * kLanes;
}

// Output channels [m0, m1) (m0 a multiple of 16, m1 one of 16 or M): each 16-channel block (a
// trailing 8-channel one) is [groups][KH][KW][8 ci][16 co] at m0 * (per-channel floats).
void pack_weights(const float* w, int64_t M, int64_t C, int64_t KH, int64_t KW, int64_t m0, int64_t m1, float* dst) {
  const int64_t G = blocks_of(C), per_m = G * KH * KW * kLanes;
  for (int64_t mb = m0; mb < m1; mb += 16) {
    const int64_t nbw = std::min<int64_t>(16, M - mb);
    float* d = dst + mb * per_m;
    for (int64_t g = 0; g < G; ++g)
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw)
          for (int64_t l = 0; l < kLanes; ++l) {
            const int64_t c = g * kLanes + l;
            for (int64_t j = 0; j < nbw; ++j) {
              *d++ = c < C ? w[(((mb + j) * C + c) * KH + kh) * KW + kw] : 0.f;
            }
          }
  }
}

}  // namespace nchwc

namespace {

using nchwc::blocks_of;
using nchwc::kLanes;

// A 5-D NCHWc tensor [N, Cb, H, W, 8]; `what` names it in the error.
void require_nchwc(const Tensor& t, const std::string& what) {
  if (t.ndim() != 5 || t.dim(4) != kLanes) fail_shape(what + " " + t.desc() + " must be NCHWc f32[N,Cb,H,W,8]");
}

class NchwcConvKernel : public Kernel {
 public:
  explicit NchwcConvKernel(const Attrs& a) {
    a.allow({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", "activation", "activation_params",
             "winograd"});
    act_ = gemm::parse_activation(a.op(), a.get_str("activation", ""), a.get_floats("activation_params"));
    win_.parse(a, false);
    winograd_ = a.get_int("winograd", -1);
    if (winograd_ != -1 && winograd_ != 0 && winograd_ != 2 && winograd_ != 4) {
      a.fail("winograd", "must be -1 (auto), 0 (direct), 2 or 4 (tile size)");
    }
    if (a.get_int("group", 1) != 1) a.fail("group", "must be 1 (grouped NCHWc conv is not supported)");
  }

  void prepare(const std::vector<const Tensor*>& consts, Isa isa) override {
    packed_.clear();
    packed_src_ = nullptr;
    wino_m_ = 0;
    wino_packed_.clear();
    const Tensor* w = consts.size() > 1 ? consts[1] : nullptr;
    if (!w || w->dtype != DType::Float32 || w->ndim() != 4 || w->numel() == 0 || w->dim(0) % kLanes) return;
    const int64_t M = w->dim(0), C = w->dim(1), KH = w->dim(2), KW = w->dim(3);
    packed_.assign(static_cast<size_t>(nchwc::packed_size(M, C, KH, KW)), 0.f);
    nchwc::pack_weights(w->ptr<float>(), M, C, KH, KW, 0, M, packed_.data());
    packed_src_ = w->data;
    packed_shape_ = w->shape;
    // Winograd's transformed weights: 3x3, stride 1, dilation 1 (any input size)
    auto ones = [](const std::vector<int64_t>& v) { return std::all_of(v.begin(), v.end(), [](int64_t x) { return x == 1; }); };
    if (KH == 3 && KW == 3 && ones(win_.strides) && ones(win_.dilations)) {
      wino_m_ = winograd_ == -1 ? nchwc::winograd_auto_tile(M, C) : winograd_;
      if (wino_m_) {
        wino_packed_.resize(static_cast<size_t>(nchwc::wino_packed_size(wino_m_, M, C)));
        nchwc::wino_pack_weights(wino_m_, w->ptr<float>(), M, C, wino_packed_.data());
      }
    }
  }

  bool reads_only_packed(int i) const override { return i == 1 && !packed_.empty(); }

  // The residual Z's buffer becomes Y's when Z dies here: each output tile reads its Z tile in
  // the epilogue just before storing over it (partial sums of weight passes stay on the stack).
  // One stream of read-modify-write instead of reading Z and write-allocating Y: ResNet's
  // expansion 1x1 convs move 1/3 fewer bytes.
  std::vector<int> inplace_inputs() const override { return {3}; }

  void run(StepIO& io) const override {
    const Tensor& X = require_f32(io, 0, "X");
    const Tensor& W = require_f32(io, 1, "W");
    const Tensor* B = io.input(2);
    const Tensor* Z = io.input(3);
    if (W.ndim() != 4) fail_shape("NchwcConv W " + W.desc() + " must be f32[M,C,KH,KW]");
    const int64_t M = W.dim(0), C = W.dim(1), KH = W.dim(2), KW = W.dim(3);
    if (M % kLanes || M == 0) fail_shape("NchwcConv W " + W.desc() + ": output channels M must be a positive multiple of 8");
    if (C == 0 || KH == 0 || KW == 0) fail_shape("NchwcConv W " + W.desc() + " is empty");
    const bool blocked = X.ndim() == 5;
    if (blocked) {
      if (X.dim(4) != kLanes || X.dim(1) != blocks_of(C)) {
        fail_shape("NchwcConv X " + X.desc() + " must be NCHWc f32[N," + std::to_string(blocks_of(C)) +
                   ",H,W,8] for W " + W.desc());
      }
    } else if (X.ndim() != 4 || X.dim(1) != C) {
      fail_shape("NchwcConv X " + X.desc() + " must be NCHWc f32[N," + std::to_string(blocks_of(C)) +
                 ",H,W,8] or NCHW f32[N," + std::to_string(C) + ",H,W] for W " + W.desc());
    }
    const std::vector<int64_t> kernel{KH, KW};
    if (!win_.kernel_shape.empty() && win_.kernel_shape != kernel) {
      fail_shape("NchwcConv kernel_shape " + shape_str(win_.kernel_shape) + " does not match W " + W.desc());
    }
    const int64_t N = X.dim(0), H = X.dim(2), Wd = X.dim(3);
    const Geometry g = make_geometry(win_, Shape{H, Wd}, kernel, "NchwcConv");
    const int64_t OH = g.out[1], OW = g.out[2], Mb = M / kLanes;
    const Shape yshape{N, Mb, OH, OW, kLanes};
    if (B && (B->dtype != DType::Float32 || B->numel() != M)) {
      fail_shape("NchwcConv bias B " + B->desc() + " must be f32[" + std::to_string(M) + "]");
    }
    if (Z && (Z->dtype != DType::Float32 || Z->shape != yshape)) {
      fail_shape("NchwcConv residual Z " + Z->desc() + " must match the output f32" + shape_str(yshape));
    }
    Tensor& Y = io.output(0, DType::Float32, yshape);
    if (Y.numel() == 0) return;

    const auto& v = nchwc::variant_for(io.isa());
    ThreadPool* pool = io.pool();
    const int threads = pool->available();

    // Weights: the constant packed in prepare(), else packed now (in parallel over blocks).
    const float* wp = nullptr;
    if (!packed_.empty() && packed_src_ == W.data && packed_shape_ == W.shape) {
      wp = packed_.data();
    } else {
      float* buf = scratch_floats(2, static_cast<size_t>(nchwc::packed_size(M, C, KH, KW)));
      const float* w = W.ptr<float>();
      pool->run_tasks((M + 15) / 16, [&](int64_t t) {
        nchwc::pack_weights(w, M, C, KH, KW, t * 16, std::min(M, t * 16 + 16), buf);
      });
      wp = buf;
    }

    const float* bias = B ? B->ptr<float>() : nullptr;
    const float* zp = Z ? Z->ptr<float>() : nullptr;
    float* yp = Y.ptr<float>();
    // Winograd: weights transformed in prepare() (a 3x3, stride-1, undilated conv); it reads X
    // in place, zeros for the padding built per border tile. Chosen automatically, it yields to
    // the direct conv where this output size makes that cheaper (small maps: see conv3x3_cost).
    const bool wino = wino_m_ && (winograd_ != -1 || nchwc::conv3x3_cost(wino_m_, N, M, C, OH, OW) <
                                                         nchwc::conv3x3_cost(0, N, M, C, OH, OW));
    if (blocked && wp == packed_.data() && wino) {
      const nchwc::WinoConv wc{X.ptr<float>(), H, Wd, g.pb[1], g.pb[2], N, C, M, OH, OW,
                               wino_packed_.data(), bias, zp, yp, act_, gemm::variant_for(io.isa()).activation};
      nchwc::winograd_conv(v, wino_m_, wc, pool);
      return;
    }

    // Input, zero-padded when the windows reach past it: every tap of every output is then in
    // bounds. Pixel pitch 8 (NCHWc) or 1 (NCHW planes).
    const int64_t pitch = blocked ? kLanes : 1, planes = blocked ? X.dim(1) : C;
    const int64_t Hp = (OH - 1) * g.s[1] + (KH - 1) * g.d[1] + 1, Wp = (OW - 1) * g.s[2] + (KW - 1) * g.d[2] + 1;
    const bool pad = g.pb[1] > 0 || g.pb[2] > 0 || Hp > H || Wp > Wd;
    const float* xin = X.ptr<float>();
    int64_t Hi = H, Wi = Wd;
    if (pad) {
      Hi = Hp, Wi = Wp;
      const int64_t psize = Hp * Wp * pitch;
      // Shared by the tasks, so it lives in the calling thread's scratch (slot 7; the NCHWc and
      // NCHW conv kernels never nest).
      float* buf = scratch_floats(7, static_cast<size_t>(N * planes * psize));
      const float* src = X.ptr<float>();
      const int64_t pb_h = g.pb[1], pb_w = g.pb[2];
      const int64_t lo = std::min(pb_w, Wp), cols = std::max<int64_t>(0, std::min(Wd, Wp - pb_w));
      pool->run_tasks(N * planes, [&](int64_t t) {
        const float* s = src + t * H * Wd * pitch;
        float* d = buf + t * psize;
        for (int64_t r = 0; r < Hp; ++r) {
          float* dr = d + r * Wp * pitch;
          const int64_t ir = r - pb_h;
          if (ir < 0 || ir >= H) {
            std::fill(dr, dr + Wp * pitch, 0.f);
            continue;
          }
          std::fill(dr, dr + lo * pitch, 0.f);
          std::memcpy(dr + lo * pitch, s + ir * Wd * pitch, sizeof(float) * static_cast<size_t>(cols * pitch));
          std::fill(dr + (lo + cols) * pitch, dr + Wp * pitch, 0.f);
        }
      });
      xin = buf;
    }
    const int64_t plane = Hi * Wi * pitch, rowstride = Wi * pitch, image = planes * plane;

    nchwc::ConvRun base{};
    base.ohstride = g.s[1] * rowstride;
    base.pstride = g.s[2] * pitch;
    base.rowstep = g.d[1] * rowstride;
    base.colstep = g.d[2] * pitch;
    base.gstride = blocked ? plane : kLanes * plane;
    base.lstride = blocked ? 1 : plane;
    base.ow = OW;
    base.full_groups = C / kLanes;
    base.rem_lanes = static_cast<int>(C % kLanes);
    base.kh = static_cast<int>(KH);
    base.kw = static_cast<int>(KW);
    base.ystride = OH * OW * kLanes;
    base.act = act_;
    base.act_fn = gemm::variant_for(io.isa()).activation;

    const int64_t nmb = (M + 15) / 16, P = OH * OW;
    const int64_t per_m = blocks_of(C) * KH * KW * kLanes;
    // Output pixels [q0, q1) of the 16-channel block at m0 of image n.
    auto run_block = [&](int64_t n, int64_t m0, int64_t q0, int64_t q1) {
      nchwc::ConvRun a = base;
      a.nb = static_cast<int>(std::min<int64_t>(2, (M - m0) / kLanes));
      a.w = wp + m0 * per_m;
      a.bias = bias ? bias + m0 : nullptr;
      a.x = xin + n * image;
      const int64_t yoff = (n * Mb + m0 / kLanes) * P * kLanes;
      a.y = yp + yoff;
      a.z = zp ? zp + yoff : nullptr;
      a.q0 = q0;
      a.q1 = q1;
      v.conv_run(a);
    };

    // A 1x1 conv whose input image exceeds L2 (> 1 MiB) and whose weights are at most 1 MiB:
    // tasks are stretches of ~64 KiB of input (whole 6-pixel tiles), each run through every
    // output block while it sits in L2. Block by block, the input would be streamed from L3 or
    // DRAM once per 16 output channels (ResNet-50's 56x56x256 inputs: 4-32 times 3.2 MB); here
    // the weights are re-read per stretch instead, from L2/L3. In-run A/B on ResNet-50 (2
    // threads, per-step medians): its 56x56 1x1 convs -0.27 / -0.30 / -0.63 ms, the strided
    // 256->512 projection -0.24 ms, 28x28x512 -> 256 -0.12 ms; 2 and 4 MiB weights gained nothing.
    const int64_t in_bytes = planes * plane * static_cast<int64_t>(sizeof(float));
    const int64_t w_bytes = M * per_m * static_cast<int64_t>(sizeof(float));
    if (KH * KW == 1 && M > 16 && in_bytes > (int64_t{1} << 20) && w_bytes <= (int64_t{1} << 20)) {
      const int64_t stretch = std::max<int64_t>(6, 64 * 1024 / (C * static_cast<int64_t>(sizeof(float))) / 6 * 6);
      const int64_t nst = (P + stretch - 1) / stretch;
      pool->run_tasks(N * nst, [&](int64_t t) {
        const int64_t n = t / nst, q0 = (t % nst) * stretch, q1 = std::min(P, q0 + stretch);
        for (int64_t m0 = 0; m0 < M; m0 += 16) run_block(n, m0, q0, q1);
      });
      return;
    }

    // Otherwise: (image, 16-channel block, pixel range), ~4 tasks per thread, none under
    // ~0.25 MFLOP, pixel ranges in whole 6-pixel tiles; the block's weights stay in L1/L2 while
    // its pixels go by.
    const int64_t units = N * nmb;
    const double flops = 2.0 * static_cast<double>(N * M * P) * static_cast<double>(C * KH * KW);
    int64_t target = threads > 1 ? 4 * threads : 1;
    target = std::max<int64_t>(1, std::min<int64_t>(target, static_cast<int64_t>(flops / 2.5e5)));
    const int64_t want = (target + units - 1) / units;
    const int64_t span = std::max<int64_t>(1, (P + want - 1) / want);
    const int64_t per_chunk = want > 1 ? (span + 5) / 6 * 6 : P, chunks = (P + per_chunk - 1) / per_chunk;
    pool->run_tasks(units * chunks, [&](int64_t t) {
      const int64_t chunk = t % chunks, u = t / chunks, n = u / nmb, m0 = (u % nmb) * 16;
      run_block(n, m0, chunk * per_chunk, std::min(P, (chunk + 1) * per_chunk));
    });
  }

 private:
  WindowAttrs win_;
  gemm::Activation act_;
  int64_t winograd_ = -1;  // attribute: -1 auto (winograd_auto_tile), 0 direct, 2 or 4
  std::vector<float, gemm::AlignedAlloc<float>> packed_;
  const void* packed_src_ = nullptr;
  Shape packed_shape_;
  int wino_m_ = 0;  // tile size of wino_packed_ (0: none)
  std::vector<float, gemm::AlignedAlloc<float>> wino_packed_;
};

// Pixels per reorder task: big enough to amortise the hand-off, small enough to share a plane.
constexpr int64_t kReorderChunk = 4096;

class ReorderToKernel : public Kernel {
 public:
  explicit ReorderToKernel(const Attrs& a) { a.allow({}); }
  void run(StepIO& io) const override {
    const Tensor& X = require_f32(io, 0, "X");
    if (X.ndim() != 4) fail_shape("ReorderToNchwc X " + X.desc() + " must be NCHW f32[N,C,H,W]");
    const int64_t N = X.dim(0), C = X.dim(1), HW = X.dim(2) * X.dim(3), Cb = blocks_of(C);
    Tensor& Y = io.output(0, DType::Float32, {N, Cb, X.dim(2), X.dim(3), kLanes});
    if (Y.numel() == 0) return;
    const auto fn = nchwc::variant_for(io.isa()).reorder_to;
    const float* xp = X.ptr<float>();
    float* yp = Y.ptr<float>();
    const int64_t chunks = (HW + kReorderChunk - 1) / kReorderChunk;
    io.pool()->parallel_for(N * Cb * chunks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t k = t % chunks, ncb = t / chunks, n = ncb / Cb, cb = ncb % Cb;
        fn(xp + n * C * HW, C, HW, cb, k * kReorderChunk, std::min(HW, (k + 1) * kReorderChunk), yp + ncb * HW * kLanes);
      }
    });
  }
};

class ReorderFromKernel : public Kernel {
 public:
  explicit ReorderFromKernel(const Attrs& a) {
    a.allow({"channels"});
    channels_ = a.get_int("channels", 0);
    if (channels_ < 1) a.fail("channels", "is required and must be positive");
  }
  void run(StepIO& io) const override {
    const Tensor& X = require_f32(io, 0, "X");
    require_nchwc(X, "ReorderFromNchwc X");
    const int64_t N = X.dim(0), Cb = X.dim(1), HW = X.dim(2) * X.dim(3), C = channels_;
    if (C > Cb * kLanes) {
      fail_shape("ReorderFromNchwc channels=" + std::to_string(C) + " exceeds the " + std::to_string(Cb * kLanes) +
                 " lanes of X " + X.desc());
    }
    Tensor& Y = io.output(0, DType::Float32, {N, C, X.dim(2), X.dim(3)});
    if (Y.numel() == 0) return;
    const auto fn = nchwc::variant_for(io.isa()).reorder_from;
    const float* xp = X.ptr<float>();
    float* yp = Y.ptr<float>();
    const int64_t used = blocks_of(C), chunks = (HW + kReorderChunk - 1) / kReorderChunk;
    io.pool()->parallel_for(N * used * chunks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t k = t % chunks, ncb = t / chunks, n = ncb / used, cb = ncb % used;
        const int lanes = static_cast<int>(std::min<int64_t>(kLanes, C - cb * kLanes));
        fn(xp + (n * Cb + cb) * HW * kLanes, lanes, HW, k * kReorderChunk, std::min(HW, (k + 1) * kReorderChunk),
           yp + (n * C + cb * kLanes) * HW);
      }
    });
  }

 private:
  int64_t channels_ = 0;
};

class NchwcPoolKernel : public Kernel {
 public:
  NchwcPoolKernel(const Attrs& a, bool is_max) : max_(is_max) { win_.parse_pool(a, is_max); }

  void run(StepIO& io) const override {
    const char* op = max_ ? "NchwcMaxPool" : "NchwcAveragePool";
    const Tensor& X = require_f32(io, 0, "X");
    require_nchwc(X, std::string(op) + " X");
    const Geometry g = make_geometry(win_, Shape{X.dim(2), X.dim(3)}, win_.kernel_shape, op);
    const int64_t N = X.dim(0), Cb = X.dim(1), OH = g.out[1], OW = g.out[2];
    Tensor& Y = io.output(0, DType::Float32, {N, Cb, OH, OW, kLanes});
    if (Y.numel() == 0) return;
    const auto& v = nchwc::variant_for(io.isa());
    const auto fn = max_ ? v.maxpool_row : v.avgpool_row;
    const float* xp = X.ptr<float>();
    float* yp = Y.ptr<float>();
    const int64_t Sin = g.in_size() * kLanes, per_row = OW * g.k_size() * kLanes;
    const bool cip = win_.count_include_pad;
    io.pool()->parallel_for(N * Cb * OH, std::max<int64_t>(1, 32768 / std::max<int64_t>(per_row, 1)),
                            [&](int64_t r0, int64_t r1) {
                              for (int64_t r = r0; r < r1; ++r) {
                                const int64_t p = r / OH, oy = r % OH;
                                fn(xp + p * Sin, g, oy, cip, yp + r * OW * kLanes);
                              }
                            });
  }

 private:
  bool max_;
  WindowAttrs win_;
};

class NchwcGlobalAvgPoolKernel : public Kernel {
 public:
  explicit NchwcGlobalAvgPoolKernel(const Attrs& a) { a.allow({}); }
  void run(StepIO& io) const override {
    const Tensor& X = require_f32(io, 0, "X");
    require_nchwc(X, "NchwcGlobalAveragePool X");
    const int64_t N = X.dim(0), Cb = X.dim(1), S = X.dim(2) * X.dim(3);
    Tensor& Y = io.output(0, DType::Float32, {N, Cb, 1, 1, kLanes});
    if (Y.numel() == 0) return;
    const auto fn = nchwc::variant_for(io.isa()).global_avgpool;
    const float* xp = X.ptr<float>();
    float* yp = Y.ptr<float>();
    io.pool()->parallel_for(N * Cb, std::max<int64_t>(1, 4096 / std::max<int64_t>(S, 1)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) fn(xp + p * S * kLanes, S, yp + p * kLanes);
    });
  }
};

// Y = act(X * scale[c] + shift[c]) on NCHWc X, scale and shift f32[C] with ceil(C/8) == Cb;
// padded lanes of Y are 0. Constant scale/shift are laid out as [Cb, 8] once in prepare().
class NchwcScaleShiftKernel : public Kernel {
 public:
  explicit NchwcScaleShiftKernel(const Attrs& a) {
    a.allow({"activation", "activation_params"});
    act_ = gemm::parse_activation(a.op(), a.get_str("activation", ""), a.get_floats("activation_params"));
  }

  void prepare(const std::vector<const Tensor*>& consts, Isa isa) override {
    lanes_.clear();
    const Tensor* s = consts.size() > 1 ? consts[1] : nullptr;
    const Tensor* b = consts.size() > 2 ? consts[2] : nullptr;
    if (!s || !b || s->dtype != DType::Float32 || b->dtype != DType::Float32 || s->ndim() != 1 ||
        s->shape != b->shape || s->numel() == 0) {
      return;
    }
    const int64_t C = s->numel();
    lanes_.resize(static_cast<size_t>(2 * blocks_of(C) * kLanes));
    pad_lanes(s->ptr<float>(), b->ptr<float>(), C, lanes_.data());
    src_ = {s->data, b->data};
    src_shape_ = s->shape;
  }

  void run(StepIO& io) const override {
    const Tensor& X = require_f32(io, 0, "X");
    const Tensor& S = require_f32(io, 1, "scale");
    const Tensor& B = require_f32(io, 2, "shift");
    require_nchwc(X, "NchwcScaleShift X");
    const int64_t N = X.dim(0), Cb = X.dim(1), HW = X.dim(2) * X.dim(3), C = S.numel();
    if (S.ndim() != 1 || B.shape != S.shape || blocks_of(C) != Cb || C == 0) {
      fail_shape("NchwcScaleShift scale " + S.desc() + " and shift " + B.desc() + " must both be f32[C] with ceil(C/8) = " +
                 std::to_string(Cb) + " for X " + X.desc());
    }
    Tensor& Y = io.output(0, DType::Float32, X.shape);
    if (Y.numel() == 0) return;
    const float* lanes = lanes_.data();
    if (lanes_.empty() || src_[0] != S.data || src_[1] != B.data || src_shape_ != S.shape) {
      float* buf = scratch_floats(2, static_cast<size_t>(2 * Cb * kLanes));
      pad_lanes(S.ptr<float>(), B.ptr<float>(), C, buf);
      lanes = buf;
    }
    const auto fn = nchwc::variant_for(io.isa()).scale_shift;
    const auto act_fn = gemm::variant_for(io.isa()).activation;
    // The pixels of all planes as one sequence, cut into ~4 ranges per thread of >= 2048 pixels
    // (16K floats); a range may span planes.
    const int64_t total = N * Cb * HW, threads = io.pool()->available();
    const int64_t ntasks = std::max<int64_t>(1, std::min<int64_t>(threads > 1 ? 4 * threads : 1, total / 2048));
    const int64_t per = (total + ntasks - 1) / ntasks;
    const float* xp = X.ptr<float>();
    float* yp = Y.ptr<float>();
    const gemm::Activation act = act_;
    io.pool()->run_tasks(ntasks, [&](int64_t t) {
      for (int64_t p = t * per, end = std::min(total, (t + 1) * per); p < end;) {
        const int64_t plane = p / HW, stop = std::min(end, (plane + 1) * HW), cb = plane % Cb;
        const int valid = static_cast<int>(std::min<int64_t>(kLanes, C - cb * kLanes));
        fn(xp + p * kLanes, stop - p, lanes + cb * kLanes, lanes + (Cb + cb) * kLanes, valid, act, act_fn,
           yp + p * kLanes);
        p = stop;
      }
    });
  }

 private:
  // [Cb*8] scales then [Cb*8] shifts, padded lanes 0.
  static void pad_lanes(const float* s, const float* b, int64_t C, float* dst) {
    const int64_t n = blocks_of(C) * kLanes;
    std::fill(dst, dst + 2 * n, 0.f);
    std::copy(s, s + C, dst);
    std::copy(b, b + C, dst + n);
  }

  gemm::Activation act_;
  std::vector<float> lanes_;
  std::array<const void*, 2> src_{};
  Shape src_shape_;
};

std::unique_ptr<Kernel> make_conv(const Attrs& a, int, int) { return std::make_unique<NchwcConvKernel>(a); }
std::unique_ptr<Kernel> make_to(const Attrs& a, int, int) { return std::make_unique<ReorderToKernel>(a); }
std::unique_ptr<Kernel> make_from(const Attrs& a, int, int) { return std::make_unique<ReorderFromKernel>(a); }
std::unique_ptr<Kernel> make_maxpool(const Attrs& a, int, int) { return std::make_unique<NchwcPoolKernel>(a, true); }
std::unique_ptr<Kernel> make_avgpool(const Attrs& a, int, int) { return std::make_unique<NchwcPoolKernel>(a, false); }
std::unique_ptr<Kernel> make_gap(const Attrs& a, int, int) { return std::make_unique<NchwcGlobalAvgPoolKernel>(a); }
std::unique_ptr<Kernel> make_scale_shift(const Attrs& a, int, int) { return std::make_unique<NchwcScaleShiftKernel>(a); }

}  // namespace

void register_nchwc_ops(std::vector<OpDef>& ops) {
  ops.push_back({"infopt.ReorderToNchwc", make_to, 1, 1, 1, 1});
  ops.push_back({"infopt.ReorderFromNchwc", make_from, 1, 1, 1, 1});
  ops.push_back({"infopt.NchwcConv", make_conv, 2, 4, 1, 1});
  ops.push_back({"infopt.NchwcMaxPool", make_maxpool, 1, 1, 1, 1});
  ops.push_back({"infopt.NchwcAveragePool", make_avgpool, 1, 1, 1, 1});
  ops.push_back({"infopt.NchwcGlobalAveragePool", make_gap, 1, 1, 1, 1});
  ops.push_back({"infopt.NchwcScaleShift", make_scale_shift, 3, 3, 1, 1});
}

}  // namespace infopt
