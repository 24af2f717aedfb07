// Conv and infopt.FusedConv (NCHW, 1-3 spatial dims), float32.
// Paths: depthwise direct loops; 1x1 stride-1 as a plain GEMM on the input;
// 2-D convs whose padded width wastes at most 1/8 on the padded-width path
// (stride phase planes, B rows are contiguous runs); everything else im2col.
// B panels are packed per KC block on demand by the GEMM driver (BPacker).
// Work is split in column chunks (row blocks for small maps), ~4 tasks per
// thread. The bias / residual / activation epilogue runs in the GEMM
// write-back (in registers on AVX2).
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/conv/conv.h"
#include "kernels/conv/conv_geometry.h"
#include "kernels/gemm/gemm.h"
#include "kernels/kernel.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace {

// Floats of one packed B block (at most KC rows x the chunk's columns), filled just before the
// GEMM reads it: half of a 512 KiB L2, leaving room for the A panels streaming through.
constexpr int64_t kBlockFloats = 65536;

// Row (c, kz, ky, kx) of the im2col matrix, columns [s0, s1), into dst.
void im2col_row(const float* xc, const Geometry& g, int64_t kz, int64_t ky, int64_t kx, int64_t s0, int64_t s1,
                float* dst) {
  const int64_t ow = g.out[2], oh = g.out[1];
  int64_t ox = s0 % ow, oy = (s0 / ow) % oh, oz = s0 / (ow * oh);
  const int64_t offx = kx * g.d[2] - g.pb[2];
  int64_t lo0, hi0;
  valid_range(ow, g.s[2], offx, g.in[2], lo0, hi0);
  for (int64_t s = s0; s < s1;) {
    const int64_t seg = std::min(ow - ox, s1 - s);
    const int64_t iz = oz * g.s[0] - g.pb[0] + kz * g.d[0];
    const int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
    float* d = dst + (s - s0);
    if (iz < 0 || iz >= g.in[0] || iy < 0 || iy >= g.in[1]) {
      std::memset(d, 0, sizeof(float) * static_cast<size_t>(seg));
    } else {
      const float* src = xc + (iz * g.in[1] + iy) * g.in[2];
      const int64_t lo = std::clamp(lo0, ox, ox + seg);
      const int64_t hi = std::clamp(hi0, lo, ox + seg);
      for (int64_t o = ox; o < lo; ++o) d[o - ox] = 0.f;
      if (g.s[2] == 1) {
        std::memcpy(d + (lo - ox), src + lo + offx, sizeof(float) * static_cast<size_t>(hi - lo));
      } else {
        for (int64_t o = lo; o < hi; ++o) d[o - ox] = src[o * g.s[2] + offx];
      }
      for (int64_t o = hi; o < ox + seg; ++o) d[o - ox] = 0.f;
    }
    s += seg;
    ox += seg;
    if (ox == ow) {
      ox = 0;
      if (++oy == oh) oy = 0, ++oz;
    }
  }
}

// Copies npad floats of src into the nr-column panels of a kc-row packed block (row already
// chosen by dst). Constant-size copies compile to a few vector moves; a run-time size of 64
// bytes went through a libc memcpy call per panel.
inline void scatter_panels(const float* src, int64_t npad, int nr, int64_t kc, float* dst) {
  if (nr == 16) {
    for (int64_t j = 0; j < npad; j += 16) std::memcpy(dst + j * kc, src + j, sizeof(float) * 16);
  } else if (nr == 8) {
    for (int64_t j = 0; j < npad; j += 8) std::memcpy(dst + j * kc, src + j, sizeof(float) * 8);
  } else {
    for (int64_t j = 0; j < npad; j += nr) std::memcpy(dst + j * kc, src + j, sizeof(float) * static_cast<size_t>(nr));
  }
}

// Columns [s0, s1) of the im2col matrix (rows: c, kz, ky, kx) of one group,
// written straight into the GEMM's packed-B layout (KC blocks of nr-column
// panels, zero-padded to Npad columns), so the GEMM skips its own packing.
// Only the rows of channels [c0, c1) are written, so channel ranges can be filled in parallel.
void im2col_packed(const float* x, const Geometry& g, int64_t Cg, int64_t c0, int64_t c1, int64_t s0, int64_t s1,
                   int nr, int64_t Npad, float* packed) {
  const int64_t K = Cg * g.k_size();
  float* row = scratch_floats(5, static_cast<size_t>(Npad));
  std::fill(row + (s1 - s0), row + Npad, 0.f);
  int64_t r = c0 * g.k_size();
  for (int64_t c = c0; c < c1; ++c) {
    const float* xc = x + c * g.in_size();
    for (int64_t kz = 0; kz < g.k[0]; ++kz)
      for (int64_t ky = 0; ky < g.k[1]; ++ky)
        for (int64_t kx = 0; kx < g.k[2]; ++kx, ++r) {
          im2col_row(xc, g, kz, ky, kx, s0, s1, row);
          const int64_t pc = r / gemm::kKC * gemm::kKC, kc = std::min(gemm::kKC, K - pc);
          float* dst = packed + pc * Npad + (r - pc) * nr;
          scatter_panels(row, Npad, nr, kc, dst);
        }
  }
}

// 2-D convs computed on the padded width. The zero-padded input is split into sy x sx phase
// planes (plane (py, px) holds padded rows py, py+sy, ... and columns px, px+sx, ...; one plane
// when the stride is 1), each Hq x Wq. The im2col row of tap (c, ky, kx) at output column
// j = oy * Wq + ox is then one contiguous run of the plane of phase (ky*dy % sy, kx*dx % sx),
// starting at (ky*dy / sy) * Wq + kx*dx / sx, so each B panel row is a single 16-float copy (no
// im2col row pass, no bounds logic, no strided gather). The Wq - Wo columns per row past Wo
// are computed and dropped. Writes the phase planes of channels [c0, c1) of one group.
// Phases no tap reads (with a 1x1 stride-2 kernel, three of four) are not written; the
// columns of the last panel that run past a plane into such a plane are dropped anyway.
void pad_phases(const float* x, const Geometry& g, int64_t c0, int64_t c1, int64_t Hq, int64_t Wq, float* xq) {
  const int64_t sy = g.s[1], sx = g.s[2], P = Hq * Wq;
  auto used = [](int64_t phase, int64_t k, int64_t d, int64_t s) {
    for (int64_t t = 0; t < k; ++t) if (t * d % s == phase) return true;
    return false;
  };
  for (int64_t c = c0; c < c1; ++c) {
    const float* xc = x + c * g.in_size();
    for (int64_t yy = 0; yy < Hq * sy; ++yy) {
      if (!used(yy % sy, g.k[1], g.d[1], sy)) continue;
      const int64_t iy = yy - g.pb[1];
      for (int64_t px = 0; px < sx; ++px) {
        if (!used(px, g.k[2], g.d[2], sx)) continue;
        float* dst = xq + ((c * sy + yy % sy) * sx + px) * P + (yy / sy) * Wq;
        if (iy < 0 || iy >= g.in[1]) {
          std::fill(dst, dst + Wq, 0.f);
          continue;
        }
        const float* src = xc + iy * g.in[2];
        // output columns qx with 0 <= qx*sx + px - pb < in
        int64_t lo, hi;
        valid_range(Wq, sx, px - g.pb[2], g.in[2], lo, hi);
        std::fill(dst, dst + lo, 0.f);
        if (sx == 1) {
          std::memcpy(dst + lo, src + lo + px - g.pb[2], sizeof(float) * static_cast<size_t>(hi - lo));
        } else {
          for (int64_t q = lo; q < hi; ++q) dst[q] = src[q * sx + px - g.pb[2]];
        }
        std::fill(dst + hi, dst + Wq, 0.f);
      }
    }
  }
}

// On-demand B of the GEMM (gemm::BPacker): im2col of one group's input, columns from s0.
struct Im2colSource {
  const float* x;
  const Geometry* g;
  int64_t s0;
  int nr;
};

void fill_im2col(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  const auto& src = *static_cast<const Im2colSource*>(ctx);
  const Geometry& g = *src.g;
  const int64_t npad = (nc + src.nr - 1) / src.nr * src.nr, kxy = g.k[1] * g.k[2];
  float* row = scratch_floats(5, static_cast<size_t>(npad));
  std::fill(row + nc, row + npad, 0.f);
  for (int64_t r = k0; r < k0 + kc; ++r) {
    const int64_t c = r / g.k_size(), kz = r / kxy % g.k[0], ky = r / g.k[2] % g.k[1], kx = r % g.k[2];
    im2col_row(src.x + c * g.in_size(), g, kz, ky, kx, src.s0 + j0, src.s0 + j0 + nc, row);
    scatter_panels(row, npad, src.nr, kc, dst + (r - k0) * src.nr);
  }
}

// On-demand B of the padded-width path: each row is one contiguous run of a phase plane.
struct PaddedSource {
  const float* xq;
  const Geometry* g;
  int64_t Hq, Wq, s0;
  int nr;
};

void fill_padded(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  const auto& src = *static_cast<const PaddedSource*>(ctx);
  const Geometry& g = *src.g;
  const int64_t sy = g.s[1], sx = g.s[2], P = src.Hq * src.Wq;
  const int64_t npad = (nc + src.nr - 1) / src.nr * src.nr, kxy = g.k[1] * g.k[2];
  for (int64_t r = k0; r < k0 + kc; ++r) {
    const int64_t c = r / kxy, ty = r / g.k[2] % g.k[1] * g.d[1], tx = r % g.k[2] * g.d[2];
    const float* p = src.xq + ((c * sy + ty % sy) * sx + tx % sx) * P + (ty / sy) * src.Wq + tx / sx + src.s0 + j0;
    scatter_panels(p, npad, src.nr, kc, dst + (r - k0) * src.nr);
  }
}

class ConvKernel : public Kernel {
 public:
  ConvKernel(const Attrs& a, bool fused) : fused_(fused) {
    if (fused) {
      a.allow({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", "activation", "activation_params"});
      act_ = gemm::parse_activation(a.op(), a.get_str("activation", ""), a.get_floats("activation_params"));
    } else {
      a.allow({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
    }
    win_.parse(a, false);
    group_ = a.get_int("group", 1);
    if (group_ < 1) a.fail("group", "must be positive");
  }

  void prepare(const std::vector<const Tensor*>& consts, Isa isa) override {
    packed_.clear();
    packed_src_ = nullptr;
    const Tensor* w = consts.size() > 1 ? consts[1] : nullptr;
    if (!w || w->dtype != DType::Float32 || w->ndim() < 3 || w->dim(0) % group_) return;
    const int64_t M = w->dim(0), Mg = M / group_, Kg = w->numel() / std::max<int64_t>(M, 1);
    if (w->dim(1) == 1 && Mg == 1) return;  // depthwise path reads W directly
    const auto& v = gemm::variant_for(isa);
    for (int64_t g = 0; g < group_; ++g) {
      packed_.push_back(gemm::pack_a(v, Mg, Kg, {w->ptr<float>() + g * Mg * Kg, Kg, 1}));
    }
    packed_src_ = w->data;
    packed_shape_ = w->shape;
  }

  // The packed path is taken whenever prepare() packed W (same tensor, same ISA).
  bool reads_only_packed(int i) const override { return i == 1 && !packed_.empty(); }

  void run(StepIO& io) const override {
    const Tensor& X = require_f32(io, 0, "X");
    const Tensor& W = require_f32(io, 1, "W");
    const Tensor* B = io.input(2);
    const Tensor* Z = fused_ ? io.input(3) : nullptr;
    if (X.ndim() < 3 || W.ndim() != X.ndim()) fail_shape("Conv needs X and W of equal rank >= 3, got " + X.desc() + " and " + W.desc());
    const int64_t N = X.dim(0), C = X.dim(1), M = W.dim(0), Cg = W.dim(1), G = group_;
    if (C != Cg * G || M % G) {
      fail_shape("Conv channels do not match: X " + X.desc() + ", W " + W.desc() + ", group " + std::to_string(G));
    }
    const std::vector<int64_t> kernel(W.shape.begin() + 2, W.shape.end());
    if (!win_.kernel_shape.empty() && win_.kernel_shape != kernel) {
      fail_shape("Conv kernel_shape " + shape_str(win_.kernel_shape) + " does not match W " + W.desc());
    }
    const Geometry g = make_geometry(win_, Shape(X.shape.begin() + 2, X.shape.end()), kernel, "Conv");
    Shape yshape{N, M};
    for (int i = 3 - g.nd; i < 3; ++i) yshape.push_back(g.out[i]);
    if (B && (B->dtype != DType::Float32 || B->numel() != M)) fail_shape("Conv bias " + B->desc() + " must be f32[" + std::to_string(M) + "]");
    if (Z && (Z->dtype != DType::Float32 || Z->shape != yshape)) {
      fail_shape("FusedConv residual Z " + Z->desc() + " must match the output f32" + shape_str(yshape));
    }
    Tensor& Y = io.output(0, DType::Float32, yshape);
    if (Y.numel() == 0) return;

    const int64_t Mg = M / G, Kg = Cg * g.k_size(), Sin = g.in_size(), Sout = g.out_size();
    const float* xp = X.ptr<float>();
    const float* wp = W.ptr<float>();
    float* yp = Y.ptr<float>();
    const auto& v = gemm::variant_for(io.isa());
    ThreadPool* pool = io.pool();
    const int threads = pool->available();

    gemm::Epilogue base_ep;
    base_ep.act = act_;
    if (B) base_ep.bias = {B->ptr<float>(), 1, 0, 1.f};
    if (Z) base_ep.residual = {Z->ptr<float>(), Sout, 1, 1.f};  // offsets added per task

    if (Cg == 1 && Mg == 1) {
      const auto depthwise_plane = conv::variant_for(io.isa()).depthwise_plane;
      pool->parallel_for(N * M, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t n = t / M, c = t % M;
          float* yplane = yp + t * Sout;
          depthwise_plane(xp + t * Sin, wp + c * g.k_size(), g, yplane);
          gemm::Epilogue ep = base_ep;
          if (Z) ep.residual.ptr = Z->ptr<float>() + n * M * Sout;
          v.epilogue(yplane, Sout, 1, Sout, c, 0, ep);
        }
      });
      return;
    }

    const bool pointwise = g.k_size() == 1 && g.s[0] * g.s[1] * g.s[2] == 1 && g.pb[0] + g.pb[1] + g.pb[2] == 0 &&
                           g.pe[0] + g.pe[1] + g.pe[2] == 0;
    const bool use_packed = !packed_.empty() && packed_src_ == W.data && packed_shape_ == W.shape &&
                            packed_[0].variant == &v;
    const Split sp = split(N * G, Mg, Kg, Sout, pointwise, v, threads);
    if (!pointwise && padded_width_ok(g) && sp.mblocks == 1) {
      run_padded_width(g, N, G, C, Cg, M, Mg, Kg, xp, wp, yp, base_ep, use_packed, v, pool, threads);
      return;
    }

    // Task = (image and group, column chunk): its im2col columns, packed straight into the
    // GEMM's B panels, and the GEMM on them.
    auto task = [&](int64_t t) {
      const int64_t chunk = t % sp.nchunks, ng = t / sp.nchunks, n = ng / G, gi = ng % G;
      const int64_t s0 = chunk * sp.cc, s1 = std::min(Sout, s0 + sp.cc);
      const float* xg = xp + (n * C + gi * Cg) * Sin;
      gemm::Matrix bm{xg + s0, Sin, 1};
      Im2colSource src{xg, &g, s0, v.nr};
      const gemm::BPacker packer{fill_im2col, &src};
      gemm::Epilogue ep = base_ep;
      if (B) ep.bias.ptr = B->ptr<float>() + gi * Mg;
      if (Z) ep.residual.ptr = Z->ptr<float>() + (n * M + gi * Mg) * Sout + s0;
      float* yc = yp + (n * M + gi * Mg) * Sout + s0;
      gemm::sgemm_block(v, 0, Mg, 0, s1 - s0, Kg, {wp + gi * Mg * Kg, Kg, 1}, bm, yc, Sout, ep,
                        use_packed ? &packed_[static_cast<size_t>(gi)] : nullptr, nullptr,
                        pointwise ? nullptr : &packer);
    };
    if (sp.mblocks == 1) {
      pool->run_tasks(N * G * sp.nchunks, task);
      return;
    }
    // Few columns, many rows (late layers: 7x7 or 14x14 maps): the columns of one (image,
    // group) are packed once, in parallel over channels, then shared by all row blocks.
    gemm::PackedB cols;
    cols.variant = &v;
    cols.K = Kg;
    cols.N = Sout;
    cols.Npad = (Sout + v.nr - 1) / v.nr * v.nr;
    float* buf = scratch_floats(2, static_cast<size_t>(Kg * cols.Npad));
    cols.ptr = buf;
    const int64_t cstep = std::max<int64_t>(1, (Cg + 4 * threads - 1) / (4 * threads));
    for (int64_t ng = 0; ng < N * G; ++ng) {
      const int64_t n = ng / G, gi = ng % G;
      const float* xg = xp + (n * C + gi * Cg) * Sin;
      pool->run_tasks((Cg + cstep - 1) / cstep, [&](int64_t t) {
        im2col_packed(xg, g, Cg, t * cstep, std::min(Cg, (t + 1) * cstep), 0, Sout, v.nr, cols.Npad, buf);
      });
      gemm::Epilogue ep = base_ep;
      if (B) ep.bias.ptr = B->ptr<float>() + gi * Mg;
      if (Z) ep.residual.ptr = Z->ptr<float>() + (n * M + gi * Mg) * Sout;
      float* yg = yp + (n * M + gi * Mg) * Sout;
      pool->run_tasks(sp.nchunks * sp.mblocks, [&](int64_t t) {
        const int64_t mb = t % sp.mblocks, chunk = t / sp.mblocks;
        const int64_t m0 = std::min(Mg, mb * sp.mrows), m1 = std::min(Mg, m0 + sp.mrows);
        gemm::sgemm_block(v, m0, m1, chunk * sp.cc, std::min(Sout, (chunk + 1) * sp.cc), Kg,
                          {wp + gi * Mg * Kg, Kg, 1}, {xg, Sin, 1}, yg, Sout, ep,
                          use_packed ? &packed_[static_cast<size_t>(gi)] : nullptr, &cols);
      });
    }
  }

 private:
  // Phase-plane size of the padded-width path.
  static void phase_dims(const Geometry& g, int64_t& Hq, int64_t& Wq) {
    Hq = (g.in[1] + g.pb[1] + g.pe[1] + g.s[1] - 1) / g.s[1];
    Wq = (g.in[2] + g.pb[2] + g.pe[2] + g.s[2] - 1) / g.s[2];
  }

  // The padded-width path pays Wq - Wo dropped columns per row; taken when that is at most 1/8
  // (3x3 stride 1 on maps of about 14 and wider, most strided convs), where skipping the
  // im2col row pass is worth more.
  static bool padded_width_ok(const Geometry& g) {
    int64_t Hq, Wq;
    phase_dims(g, Hq, Wq);
    return g.in[0] == 1 && g.k[0] == 1 && g.pb[0] + g.pe[0] == 0 && (Wq - g.out[2]) * 8 <= Wq;
  }

  void run_padded_width(const Geometry& g, int64_t N, int64_t G, int64_t C, int64_t Cg, int64_t M, int64_t Mg,
                        int64_t Kg, const float* xp, const float* wp, float* yp, const gemm::Epilogue& base_ep,
                        bool use_packed, const gemm::Variant& v, ThreadPool* pool, int threads) const {
    int64_t Hq, Wq;
    phase_dims(g, Hq, Wq);
    const int64_t Ho = g.out[1], Wo = g.out[2], Sin = g.in_size(), Sout = Ho * Wo, Np = Ho * Wq;
    const Split sp = split(1, Mg, Kg, Np, false, v, threads);
    // the last panel reads up to 15 columns past the last row, from a tap shifted by up to
    // (k-1)*d / s columns: into the next rows of the plane, or past the last plane
    const int64_t planes = Cg * g.s[1] * g.s[2] * Hq * Wq, slack = Wq + (g.k[2] - 1) * g.d[2] + 16;
    // Shared by the tasks, so it lives in the calling thread's scratch (slot 7; slot 6, pooling's,
    // holds each task's C block: pooling and conv never nest).
    float* xpad = scratch_floats(7, static_cast<size_t>(planes + slack));
    std::fill(xpad + planes, xpad + planes + slack, 0.f);
    const int64_t cstep = std::max<int64_t>(1, (Cg + 4 * threads - 1) / (4 * threads));
    for (int64_t ng = 0; ng < N * G; ++ng) {
      const int64_t n = ng / G, gi = ng % G;
      const float* xg = xp + (n * C + gi * Cg) * Sin;
      pool->run_tasks((Cg + cstep - 1) / cstep, [&](int64_t t) {
        pad_phases(xg, g, t * cstep, std::min(Cg, (t + 1) * cstep), Hq, Wq, xpad);
      });
      gemm::Epilogue ep = base_ep;
      if (ep.bias.ptr) ep.bias.ptr += gi * Mg;
      if (ep.residual.ptr) ep.residual.ptr += (n * M + gi * Mg) * Sout;
      float* yg = yp + (n * M + gi * Mg) * Sout;
      pool->run_tasks(sp.nchunks, [&](int64_t chunk) {
        const int64_t s0 = chunk * sp.cc, s1 = std::min(Np, s0 + sp.cc), cn = s1 - s0;
        PaddedSource src{xpad, &g, Hq, Wq, s0, v.nr};
        const gemm::BPacker packer{fill_padded, &src};
        float* cb = scratch_floats(6, static_cast<size_t>(Mg * cn));
        // bias and activation are per row, so they can run in the GEMM's write-back; a residual
        // is laid out by output column and is added after the copy
        const bool late_ep = ep.residual.ptr != nullptr;
        gemm::sgemm_block(v, 0, Mg, 0, cn, Kg, {wp + gi * Mg * Kg, Kg, 1}, {xpad, Wq, 1}, cb, cn,
                          late_ep ? gemm::Epilogue{} : ep, use_packed ? &packed_[static_cast<size_t>(gi)] : nullptr,
                          nullptr, &packer);
        // the kept columns of each output row in this chunk
        for (int64_t oy = s0 / Wq; oy * Wq < s1; ++oy) {
          const int64_t j0 = std::max(s0, oy * Wq), j1 = std::min(s1, oy * Wq + Wo);
          if (j1 <= j0) continue;
          const int64_t o0 = oy * Wo + (j0 - oy * Wq), len = j1 - j0;
          for (int64_t m = 0; m < Mg; ++m) {
            std::memcpy(yg + m * Sout + o0, cb + m * cn + (j0 - s0), sizeof(float) * static_cast<size_t>(len));
          }
          if (late_ep) v.epilogue(yg + o0, Sout, Mg, len, 0, o0, ep);
        }
      });
    }
  }

  struct Split {
    int64_t cc, nchunks, mrows, mblocks;
  };

  // Work split for `ng` (image, group) GEMMs of Mg x Sout x Kg. About 4 tasks per thread, claimed
  // dynamically, so that a thread that gets descheduled (a busy machine) or a slower chunk does
  // not leave the other thread idle at the end; but no task under ~0.25 MFLOP, where the
  // hand-off would cost more than it spreads. Columns come in multiples of 16 (every nr), the
  // im2col chunk stays near L2 size, rows in multiples of mr (pre-packed A panels line up).
  static Split split(int64_t ng, int64_t Mg, int64_t Kg, int64_t Sout, bool pointwise, const gemm::Variant& v,
                     int threads) {
    const double flops = 2.0 * static_cast<double>(ng * Mg) * static_cast<double>(Kg * Sout);
    int64_t target = threads > 1 ? 4 * threads : 1;
    target = std::max<int64_t>(1, std::min<int64_t>(target, static_cast<int64_t>(flops / 2.5e5)));
    auto round16 = [](int64_t x) { return (x + 15) / 16 * 16; };
    const int64_t cap =
        pointwise ? gemm::kNC : std::max<int64_t>(64, kBlockFloats / std::min(std::max<int64_t>(Kg, 1), gemm::kKC) / 16 * 16);
    const int64_t want_chunks = (target + ng - 1) / ng;
    int64_t cc = std::min(cap, std::max<int64_t>(64, round16((Sout + want_chunks - 1) / want_chunks)));
    cc = std::min(cc, std::max<int64_t>(Sout, 1));
    Split sp{cc, (Sout + cc - 1) / cc, Mg, 1};
    const int64_t have = ng * sp.nchunks;
    if (have < target) {
      const int64_t mr = v.mr, tiles = (Mg + mr - 1) / mr;
      const int64_t blocks = std::min((target + have - 1) / have, std::max<int64_t>(1, tiles / 4));
      sp.mrows = (tiles + blocks - 1) / blocks * mr;
      sp.mblocks = (Mg + sp.mrows - 1) / sp.mrows;
    }
    return sp;
  }

  bool fused_;
  WindowAttrs win_;
  int64_t group_ = 1;
  gemm::Activation act_;
  std::vector<gemm::PackedA> packed_;
  const void* packed_src_ = nullptr;
  Shape packed_shape_;
};

std::unique_ptr<Kernel> make_conv(const Attrs& a, int, int) { return std::make_unique<ConvKernel>(a, false); }
std::unique_ptr<Kernel> make_fused_conv(const Attrs& a, int, int) { return std::make_unique<ConvKernel>(a, true); }

}  // namespace

void register_conv_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Conv", make_conv, 2, 3, 1, 1});
  ops.push_back({"infopt.FusedConv", make_fused_conv, 2, 4, 1, 1});
}

}  // namespace infopt
