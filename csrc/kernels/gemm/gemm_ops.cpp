// Gemm, infopt.FusedGemm and MatMul on top of the sgemm driver.
#include <algorithm>
#include <stdexcept>

#include "kernels/broadcast.h"
#include "kernels/gemm/gemm.h"
#include "kernels/kernel.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace {

// B packed at prepare() time, used while the run sees the same constant buffer.
// Every run path hands the pack to sgemm, which then never reads B itself, so
// the executor may free the original (reads_only_packed).
struct PrepackedB {
  gemm::PackedB pack;
  const void* src = nullptr;
  bool packed() const { return src != nullptr; }
  const gemm::PackedB* get(const void* data, const gemm::Variant& v, int64_t K, int64_t N) const {
    return src && src == data && pack.variant == &v && pack.K == K && pack.N == N ? &pack : nullptr;
  }
};

class GemmKernel : public Kernel {
 public:
  GemmKernel(const Attrs& a, bool fused) {
    if (fused) {
      a.allow({"alpha", "beta", "transA", "transB", "activation", "activation_params"});
      act_ = gemm::parse_activation(a.op(), a.get_str("activation", ""), a.get_floats("activation_params"));
    } else {
      a.allow({"alpha", "beta", "transA", "transB"});
    }
    alpha_ = static_cast<float>(a.get_float("alpha", 1.0));
    beta_ = static_cast<float>(a.get_float("beta", 1.0));
    trans_a_ = a.get_int("transA", 0) != 0;
    trans_b_ = a.get_int("transB", 0) != 0;
  }

  // Constant B (the usual fully connected weight) is packed once.
  void prepare(const std::vector<const Tensor*>& consts, Isa isa) override {
    packed_ = {};
    const Tensor* b = consts.size() > 1 ? consts[1] : nullptr;
    if (!b || b->dtype != DType::Float32 || b->ndim() != 2) return;
    const int64_t K = trans_b_ ? b->dim(1) : b->dim(0), N = trans_b_ ? b->dim(0) : b->dim(1);
    const gemm::Matrix bm = trans_b_ ? gemm::Matrix{b->ptr<float>(), 1, K} : gemm::Matrix{b->ptr<float>(), N, 1};
    packed_.pack = gemm::pack_b(gemm::variant_for(isa), K, N, bm);
    packed_.src = b->data;
  }

  bool reads_only_packed(int i) const override { return i == 1 && packed_.packed(); }

  void run(StepIO& io) const override {
    const Tensor& A = require_f32(io, 0, "A");
    const Tensor& B = require_f32(io, 1, "B");
    const Tensor* C = io.input(2);
    if (A.ndim() != 2 || B.ndim() != 2) fail_shape("Gemm needs 2-D A and B, got " + A.desc() + " and " + B.desc());
    const int64_t M = trans_a_ ? A.dim(1) : A.dim(0), K = trans_a_ ? A.dim(0) : A.dim(1);
    const int64_t KB = trans_b_ ? B.dim(1) : B.dim(0), N = trans_b_ ? B.dim(0) : B.dim(1);
    if (K != KB) fail_shape("Gemm inner dimensions differ: A " + A.desc() + " B " + B.desc());
    gemm::Epilogue ep;
    ep.alpha = alpha_;
    ep.act = act_;
    if (C && beta_ != 0.f) {
      if (C->dtype != DType::Float32) fail_shape("input C must be float32, got " + C->desc());
      const Shape& cs = C->shape;
      bool ok = cs.size() <= 2;
      int64_t cm = 1, cn = 1;
      if (cs.size() == 1) cn = cs[0];
      if (cs.size() == 2) cm = cs[0], cn = cs[1];
      ok = ok && (cm == 1 || cm == M) && (cn == 1 || cn == N);
      if (!ok) fail_shape("C " + C->desc() + " does not broadcast to [" + std::to_string(M) + "," + std::to_string(N) + "]");
      ep.bias.ptr = C->ptr<float>();
      ep.bias.rs = cm == 1 ? 0 : cn;
      ep.bias.cs = cn == 1 ? 0 : 1;
      ep.bias.scale = beta_;
    }
    Tensor& Y = io.output(0, DType::Float32, {M, N});
    const gemm::Matrix a = trans_a_ ? gemm::Matrix{A.ptr<float>(), 1, M} : gemm::Matrix{A.ptr<float>(), K, 1};
    const gemm::Matrix b = trans_b_ ? gemm::Matrix{B.ptr<float>(), 1, K} : gemm::Matrix{B.ptr<float>(), N, 1};
    const auto& v = gemm::variant_for(io.isa());
    gemm::sgemm(v, M, N, K, a, b, Y.ptr<float>(), N, ep, io.pool(), nullptr, packed_.get(B.data, v, K, N));
  }

 private:
  PrepackedB packed_;
  float alpha_ = 1.f, beta_ = 1.f;
  bool trans_a_ = false, trans_b_ = false;
  gemm::Activation act_;
};

class MatMulKernel : public Kernel {
 public:
  explicit MatMulKernel(const Attrs& a) { a.allow({}); }

  void prepare(const std::vector<const Tensor*>& consts, Isa isa) override {
    packed_ = {};
    const Tensor* b = consts.size() > 1 ? consts[1] : nullptr;
    if (!b || b->dtype != DType::Float32 || b->ndim() < 2 || b->numel() != b->dim(b->ndim() - 2) * b->dim(b->ndim() - 1)) return;
    const int64_t K = b->dim(b->ndim() - 2), N = b->dim(b->ndim() - 1);
    packed_.pack = gemm::pack_b(gemm::variant_for(isa), K, N, {b->ptr<float>(), N, 1});
    packed_.src = b->data;
  }

  bool reads_only_packed(int i) const override { return i == 1 && packed_.packed(); }

  void run(StepIO& io) const override {
    const Tensor& A = require_f32(io, 0, "A");
    const Tensor& B = require_f32(io, 1, "B");
    if (A.ndim() < 1 || B.ndim() < 1) fail_shape("MatMul operands must be at least 1-D");
    const bool a1 = A.ndim() == 1, b1 = B.ndim() == 1;
    const Shape as = a1 ? Shape{1, A.dim(0)} : A.shape;
    const Shape bs = b1 ? Shape{B.dim(0), 1} : B.shape;
    const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
    if (bs[bs.size() - 2] != K) fail_shape("MatMul inner dimensions differ: " + A.desc() + " x " + B.desc());
    const Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
    const Shape batch = broadcast_shapes(abatch, bbatch);
    Shape out = batch;
    if (!a1) out.push_back(M);
    if (!b1) out.push_back(N);
    Tensor& Y = io.output(0, DType::Float32, out);
    const auto& v = gemm::variant_for(io.isa());
    const gemm::Epilogue ep;
    const int64_t nb = shape_numel(batch);
    const float* ap = A.ptr<float>();
    const float* bp = B.ptr<float>();
    float* yp = Y.ptr<float>();
    if (nb == 0 || M == 0 || N == 0) return;
    if (shape_numel(bbatch) == 1 && shape_numel(abatch) == nb) {
      // B shared by every batch: one GEMM with the batch folded into M.
      gemm::sgemm(v, nb * M, N, K, {ap, K, 1}, {bp, N, 1}, yp, N, ep, io.pool(), nullptr, packed_.get(B.data, v, K, N));
      return;
    }
    const auto sa = broadcast_strides(abatch, batch), sb = broadcast_strides(bbatch, batch);
    auto one = [&](int64_t idx, ThreadPool* pool) {
      int64_t rem = idx, oa = 0, ob = 0;
      for (size_t d = batch.size(); d-- > 0;) {
        const int64_t i = rem % batch[d];
        rem /= batch[d];
        oa += i * sa[d];
        ob += i * sb[d];
      }
      gemm::sgemm(v, M, N, K, {ap + oa * M * K, K, 1}, {bp + ob * K * N, N, 1}, yp + idx * M * N, N, ep, pool,
                  nullptr, packed_.get(B.data, v, K, N));
    };
    const double flops = 2.0 * M * N * K;
    if (nb >= io.pool()->available() && flops < 4.0e7) {
      io.pool()->run_tasks(nb, [&](int64_t t) { one(t, nullptr); });
    } else {
      for (int64_t t = 0; t < nb; ++t) one(t, io.pool());
    }
  }

 private:
  PrepackedB packed_;
};

// infopt.FusedMatMul: Y = act(A @ B + C) for A [..., K], 2-D B [K, N] (packed
// once when constant) and an optional bias C broadcast over the last axis
// ([N] or one value); the batch dims fold into M. Attributes activation /
// activation_params as for infopt.FusedGemm.
class FusedMatMulKernel : public Kernel {
 public:
  explicit FusedMatMulKernel(const Attrs& a) {
    a.allow({"activation", "activation_params"});
    act_ = gemm::parse_activation(a.op(), a.get_str("activation", ""), a.get_floats("activation_params"));
  }

  void prepare(const std::vector<const Tensor*>& consts, Isa isa) override {
    packed_ = {};
    const Tensor* b = consts.size() > 1 ? consts[1] : nullptr;
    if (!b || b->dtype != DType::Float32 || b->ndim() != 2) return;
    packed_.pack = gemm::pack_b(gemm::variant_for(isa), b->dim(0), b->dim(1), {b->ptr<float>(), b->dim(1), 1});
    packed_.src = b->data;
  }

  bool reads_only_packed(int i) const override { return i == 1 && packed_.packed(); }

  void run(StepIO& io) const override {
    const Tensor& A = require_f32(io, 0, "A");
    const Tensor& B = require_f32(io, 1, "B");
    const Tensor* C = io.input(2);
    if (A.ndim() < 1 || B.ndim() != 2 || A.dim(A.ndim() - 1) != B.dim(0)) {
      fail_shape("FusedMatMul needs A [..., K] and B [K, N], got " + A.desc() + " and " + B.desc());
    }
    const int64_t K = B.dim(0), N = B.dim(1), M = K ? A.numel() / K : 0;
    gemm::Epilogue ep;
    ep.act = act_;
    if (C) {
      if (C->dtype != DType::Float32 || (C->numel() != N && C->numel() != 1)) {
        fail_shape("FusedMatMul bias C " + C->desc() + " must be float32 with N=" + std::to_string(N) + " or 1 values");
      }
      ep.bias = {C->ptr<float>(), 0, C->numel() == 1 ? 0 : 1, 1.f};
    }
    Shape out(A.shape.begin(), A.shape.end() - 1);
    out.push_back(N);
    Tensor& Y = io.output(0, DType::Float32, out);
    if (Y.numel() == 0) return;
    const auto& v = gemm::variant_for(io.isa());
    gemm::sgemm(v, M, N, K, {A.ptr<float>(), K, 1}, {B.ptr<float>(), N, 1}, Y.ptr<float>(), N, ep, io.pool(), nullptr,
                packed_.get(B.data, v, K, N));
  }

 private:
  gemm::Activation act_;
  PrepackedB packed_;
};

std::unique_ptr<Kernel> make_fused_matmul(const Attrs& a, int, int) { return std::make_unique<FusedMatMulKernel>(a); }
std::unique_ptr<Kernel> make_gemm(const Attrs& a, int, int) { return std::make_unique<GemmKernel>(a, false); }
std::unique_ptr<Kernel> make_fused_gemm(const Attrs& a, int, int) { return std::make_unique<GemmKernel>(a, true); }
std::unique_ptr<Kernel> make_matmul(const Attrs& a, int, int) { return std::make_unique<MatMulKernel>(a); }

}  // namespace

void register_gemm_ops(std::vector<OpDef>& ops) {
  ops.push_back({"Gemm", make_gemm, 2, 3, 1, 1});
  ops.push_back({"infopt.FusedGemm", make_fused_gemm, 2, 3, 1, 1});
  ops.push_back({"MatMul", make_matmul, 2, 2, 1, 1});
  ops.push_back({"infopt.FusedMatMul", make_fused_matmul, 2, 3, 1, 1});
}

}  // namespace infopt
