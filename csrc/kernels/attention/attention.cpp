// infopt.Attention: Y = softmax(Q K^T * scale + mask) V per batch entry.
//
//   Q [..., Sq, D], K [..., Sk, D] (or Kt [..., D, Sk] with kt=1), V [..., Sk, Dv]
//   -> Y [..., Sq, Dv]; Q, K and V share the same batch dims ("..." is usually
//   [batch, heads]). mask (optional): float32 (added) or bool (true = attend),
//   broadcastable to [..., Sq, Sk]. Attributes: scale (default 1/sqrt(D)),
//   causal (0/1): query i sees keys j <= i + (Sk - Sq) (aligned bottom-right,
//   so a decode step with a KV cache of length Sk > Sq sees the whole past),
//   kt (0/1): input 1 is K already transposed;
//   bshd (0/1): Q [B, Sq, H, D], K [B, Sk, H, D], V [B, Sk, H, Dv] -> Y [B, Sq, H, Dv], the
//   layout of a projection's output split into heads, so the graph needs no head Transposes
//   (the batch dims, for the mask too, are then [B, H]).
// A row whose keys are all masked gives NaN, like the float64 reference.
//
// Work is split into (batch entry, block of query rows) tasks over the pool.
// A task computes its rows of S = scale * Q K^T in a thread-local tile (at
// most ~256 KiB), adds the mask and exponentiates each row in place, then
// writes Y = P V with the 1 / rowsum normalisation folded into the product's
// write-back (see attention.h). K given untransposed (kt=0) is copied per
// task into the K^T layout the row kernel reads; with kt=1 (what the fused
// graphs give) no operand is copied. Keys past the last live one of a block
// (padding masked with false / float32 min) are not computed at all.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "kernels/broadcast.h"
#include "kernels/attention/attention.h"
#include "kernels/kernel.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace {

class AttentionKernel : public Kernel {
 public:
  explicit AttentionKernel(const Attrs& a) {
    a.allow({"scale", "causal", "kt", "bshd"});
    kt_ = a.get_int("kt", 0) != 0;
    bshd_ = a.get_int("bshd", 0) != 0;
    if (kt_ && bshd_) a.fail("kt", "cannot be combined with bshd=1 (K comes as [B, Sk, H, D])");
    has_scale_ = a.has("scale");
    scale_ = static_cast<float>(a.get_float("scale", 1.0));
    causal_ = a.get_int("causal", 0) != 0;
  }

  void run(StepIO& io) const override {
    const Tensor& q = require_f32(io, 0, "Q");
    const Tensor& k = require_f32(io, 1, "K");
    const Tensor& v = require_f32(io, 2, "V");
    const Tensor* mask = io.input(3);
    const int64_t r = q.ndim();
    if (bshd_ && (r != 4 || k.ndim() != 4 || v.ndim() != 4)) {
      fail_shape("Attention with bshd=1 needs 4-D Q, K, V ([batch, seq, heads, head_dim]), got " + q.desc() + ", " +
                 k.desc() + ", " + v.desc());
    }
    if (r < 2 || k.ndim() != r || v.ndim() != r) {
      fail_shape("Attention needs Q, K, V of one rank >= 2 ([..., seq, head_dim]), got " + q.desc() + ", " + k.desc() +
                 ", " + v.desc());
    }
    // bshd: [B, S, H, D] read as batch [B, H] of [S, D] matrices with row stride H*D.
    const Shape batch = bshd_ ? Shape{q.dim(0), q.dim(2)} : Shape(q.shape.begin(), q.shape.end() - 2);
    const int64_t H = bshd_ ? q.dim(2) : 1;
    const int64_t Sq = bshd_ ? q.dim(1) : q.dim(r - 2), D = q.dim(r - 1);
    const int64_t Sk = bshd_ ? k.dim(1) : kt_ ? k.dim(r - 1) : k.dim(r - 2);
    const int64_t Dk = kt_ ? k.dim(r - 2) : k.dim(r - 1);
    const int64_t Dv = v.dim(r - 1);
    const bool same_batch = bshd_ ? k.dim(0) == batch[0] && k.dim(2) == H && v.dim(0) == batch[0] && v.dim(2) == H
                                  : Shape(k.shape.begin(), k.shape.end() - 2) == batch &&
                                        Shape(v.shape.begin(), v.shape.end() - 2) == batch;
    if (!same_batch || Dk != D || (bshd_ ? v.dim(1) : v.dim(r - 2)) != Sk) {
      fail_shape(std::string("Attention shapes do not match: Q ") + q.desc() + (kt_ ? ", Kt " : ", K ") + k.desc() +
                 ", V " + v.desc() + (bshd_ ? " (bshd=1: [batch, seq, heads, head_dim])" : ""));
    }
    Shape sshape = batch;
    sshape.push_back(Sq);
    sshape.push_back(Sk);
    std::vector<int64_t> ms(sshape.size(), 0);
    if (mask) {
      if (mask->dtype != DType::Float32 && mask->dtype != DType::Bool) fail_shape("Attention mask must be float32 or bool, got " + mask->desc());
      bool ok = mask->ndim() <= r;
      for (int64_t i = 0; ok && i < mask->ndim(); ++i) {
        const int64_t md = mask->dim(mask->ndim() - 1 - i);
        ok = md == 1 || md == sshape[static_cast<size_t>(r - 1 - i)];
      }
      if (!ok) fail_shape("Attention mask " + mask->desc() + " does not broadcast to " + shape_str(sshape));
      ms = broadcast_strides(mask->shape, sshape);
    }
    Shape yshape = batch;
    yshape.push_back(Sq);
    yshape.push_back(Dv);
    if (bshd_) yshape = Shape{batch[0], Sq, H, Dv};
    Tensor& y = io.output(0, DType::Float32, yshape);
    if (y.numel() == 0) return;
    const int64_t nb = shape_numel(batch);
    const float scale = has_scale_ ? scale_ : 1.f / std::sqrt(static_cast<float>(D));
    const auto& av = attention::variant_for(io.isa());
    const int threads = io.pool()->available();
    // Query rows per task: the score tile stays within ~256 KiB (half of L2),
    // short sequences take all their rows at once, and a lone batch entry is
    // still cut into enough blocks for every thread.
    const int64_t ldS = std::max<int64_t>(Sk, 1);
    int64_t qb = std::clamp<int64_t>(65536 / ldS, 6, 192);
    if (nb < 2 * threads) qb = std::min(qb, std::max<int64_t>(6, (Sq * nb + 2 * threads - 1) / (2 * threads)));
    qb = std::min((qb + 5) / 6 * 6, Sq);
    const int64_t nqb = (Sq + qb - 1) / qb;
    const float* qp = q.ptr<float>();
    const float* kp = k.ptr<float>();
    const float* vp = v.ptr<float>();
    float* yp = y.ptr<float>();
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const bool fmask = mask && mask->dtype == DType::Float32;
    const int64_t mrs = mask ? ms[static_cast<size_t>(r - 2)] : 0, mcs = mask ? ms[static_cast<size_t>(r - 1)] : 0;
    const int64_t ldk = kt_ ? Sk : ldS;  // row stride of the K^T the kernel reads
    // A key is dead for a row when its mask is false or <= kDead (float32-min style
    // padding masks): its weight exp(s + mask - max) is then exactly 0 for any finite
    // score below 1e29 in magnitude, so trailing keys dead for every row of a block
    // (right padding) are skipped. A row with no live key is never trimmed, keeping
    // the untrimmed result for it.
    constexpr float kDead = -1e30f;
    auto live = [&](int64_t off) {
      return fmask ? mask->ptr<float>()[off] > kDead : mask->ptr<bool>()[off];
    };
    auto task = [&](int64_t t) {
      const int64_t bh = t / nqb, i0 = (t % nqb) * qb;
      const int64_t m = std::min(qb, Sq - i0);
      // Causal rows see a prefix of the keys; the block needs the longest one.
      auto seen = [&](int64_t qi) { return causal_ ? std::clamp<int64_t>(qi + (Sk - Sq) + 1, 0, Sk) : Sk; };
      int64_t klen = seen(i0 + m - 1);
      int64_t moff = 0;
      if (mask) {
        int64_t rem = bh;
        for (size_t d = batch.size(); d-- > 0;) {
          moff += (rem % batch[d]) * ms[d];
          rem /= batch[d];
        }
        if (mcs != 0) {
          int64_t used = 0;
          for (int64_t i = 0; i < m && used < klen; ++i) {
            const int64_t off = moff + (i0 + i) * mrs;
            int64_t j = seen(i0 + i);
            while (j > 0 && !live(off + (j - 1) * mcs)) --j;
            if (j == 0) {  // no live key in this row
              used = klen;
              break;
            }
            used = std::max(used, j);
          }
          klen = used;
        }
      }
      const size_t tile = static_cast<size_t>(qb * ldS);
      const size_t kt_size = kt_ ? 0 : static_cast<size_t>(D * ldS);
      float* s = scratch_floats(4, tile + kt_size + static_cast<size_t>(qb));
      float* inv = s + tile + kt_size;
      // head bh's rows: row stride H * (width) in bshd (heads interleaved), else the width
      const int64_t b = bh / H, h = bh % H;
      const float* qh = qp + ((b * Sq + i0) * H + h) * D;
      const float* kh = kp + (b * Sk * H + h) * D;
      const float* vh = vp + (b * Sk * H + h) * Dv;
      if (!kt_) {  // K [Sk, D] -> K^T [D, Sk]
        float* ktp = s + tile;
        const int64_t krow = H * D;
        for (int64_t j = 0; j < klen; ++j) {
          for (int64_t d = 0; d < D; ++d) ktp[d * ldk + j] = kh[j * krow + d];
        }
        kh = ktp;
      }
      av.rows_gemm(m, klen, D, qh, H * D, kh, ldk, s, ldS, scale, nullptr);
      for (int64_t i = 0; i < m; ++i) {
        float* row = s + i * ldS;
        const int64_t qi = i0 + i, len = std::min(seen(qi), klen);
        const float* mrow = nullptr;
        if (mask) {
          const int64_t off = moff + qi * mrs;
          if (fmask && mcs == 1) {
            mrow = mask->ptr<float>() + off;
          } else if (fmask) {
            const float* mp = mask->ptr<float>() + off;
            for (int64_t j = 0; j < len; ++j) row[j] += mp[j * mcs];
          } else {
            const bool* mp = mask->ptr<bool>() + off;
            for (int64_t j = 0; j < len; ++j) row[j] = mp[j * mcs] ? row[j] : neg_inf;
          }
        }
        // No key at all gives NaN like the float64 reference (0 / 0).
        inv[i] = len == 0 ? nan : 1.f / av.exp_row(row, len, mrow);
        std::fill(row + len, row + klen, 0.f);
      }
      float* yh = yp + ((b * Sq + i0) * H + h) * Dv;
      av.rows_gemm(m, Dv, klen, s, ldS, vh, H * Dv, yh, H * Dv, 1.f, inv);
    };
    io.pool()->run_tasks(nb * nqb, task);
  }

 private:
  bool has_scale_ = false, causal_ = false, kt_ = false, bshd_ = false;
  float scale_ = 1.f;
};

std::unique_ptr<Kernel> make_attention(const Attrs& a, int, int) { return std::make_unique<AttentionKernel>(a); }

}  // namespace

void register_attention_ops(std::vector<OpDef>& ops) {
  ops.push_back({"infopt.Attention", make_attention, 3, 4, 1, 1});
}

}  // namespace infopt
