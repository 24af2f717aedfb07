// GEMM driver: blocking, packing and threading shared by all micro-kernels.
#include "kernels/variant_table.h"
#include "kernels/gemm/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <sys/mman.h>

#include "runtime/tensor.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace gemm {

const std::vector<const Variant*>& variants() {
  return family_variants(scalar_variant(), INFOPT_AVX2_VARIANT());
}

const Variant& variant_for(Isa isa) {
  return family_variant_for(isa, scalar_variant(), INFOPT_AVX2_VARIANT());
}

Activation parse_activation(const std::string& op, const std::string& name, const std::vector<double>& params) {
  Activation a;
  auto need = [&](size_t n) {
    if (params.size() < n) {
      throw std::invalid_argument(op + ": attribute 'activation_params' needs " + std::to_string(n) +
                                  " values for activation '" + name + "'");
    }
  };
  if (name.empty() || name == "None" || name == "Identity") {
    a.kind = Act::None;
  } else if (name == "Relu") {
    a.kind = Act::Relu;
  } else if (name == "LeakyRelu") {
    a.kind = Act::LeakyRelu;
    a.p0 = params.empty() ? 0.01f : static_cast<float>(params[0]);
  } else if (name == "Clip") {
    need(2);
    a.kind = Act::Clip;
    a.p0 = static_cast<float>(params[0]);
    a.p1 = static_cast<float>(params[1]);
  } else if (name == "Sigmoid") {
    a.kind = Act::Sigmoid;
  } else if (name == "Tanh") {
    a.kind = Act::Tanh;
  } else if (name == "HardSigmoid") {
    a.kind = Act::HardSigmoid;
    a.p0 = params.size() > 0 ? static_cast<float>(params[0]) : 0.2f;
    a.p1 = params.size() > 1 ? static_cast<float>(params[1]) : 0.5f;
  } else if (name == "HardSwish") {
    a.kind = Act::HardSwish;
  } else if (name == "Gelu") {
    a.kind = Act::Gelu;
  } else if (name == "GeluTanh") {
    a.kind = Act::GeluTanh;
  } else {
    throw std::invalid_argument(op + ": attribute 'activation' has unsupported value '" + name + "'");
  }
  return a;
}

namespace {
// Packs of 4 MiB and more (fully connected weights, large conv layers) are streamed from memory
// on every run; on 2 MiB pages the stream takes no TLB misses. Measured on a 1-row Gemm with
// 4096x4096 packed weights (in process, alternating with 4 KiB pages): 1 thread 7.4 -> 9.1 GB/s,
// 2 threads 13.2 -> 15.0 GB/s (numpy advises its own arrays of 4 MiB and more the same way).
constexpr size_t kHugePage = size_t(2) << 20;
bool huge_pack(size_t bytes) { return bytes >= 2 * kHugePage; }
}  // namespace

void* allocate_weights(size_t bytes) {
  if (!huge_pack(bytes)) return ::operator new(bytes, std::align_val_t(64));
  void* p = ::operator new(bytes, std::align_val_t(kHugePage));
#ifdef MADV_HUGEPAGE
  madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);  // advice: failure changes nothing
#endif
  return p;
}

void free_weights(void* p, size_t bytes) {
  if (huge_pack(bytes)) {
    ::operator delete(p, std::align_val_t(kHugePage));
  } else {
    ::operator delete(p, std::align_val_t(64));
  }
}

namespace {

// Ap: panels of mr rows, each stored k-major (kc x mr), zero-padded rows.
void pack_a_block(const Variant& v, const Matrix& A, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* ap) {
  const int mr = v.mr;
  for (int64_t ir = 0; ir < mc; ir += mr) {
    const int64_t m = std::min<int64_t>(mr, mc - ir);
    const float* src = A.p + (i0 + ir) * A.rs + k0 * A.cs;
    if (A.cs == 1 && m == mr && v.pack_a_panel) {  // row-major A (activations of MatMul)
      v.pack_a_panel(src, A.rs, kc, ap);
    } else if (A.rs == 1 && m == mr) {  // transposed A: the mr values of one k are contiguous
      for (int64_t k = 0; k < kc; ++k) std::memcpy(ap + k * mr, src + k * A.cs, sizeof(float) * mr);
    } else {
      // a short panel (M < mr rows left, e.g. a batch-1 Gemm): zeroed once, then its rows
      // (zeroing mr - m floats per k compiled to a memset call per k: 1/3 of a 16x16 Gemm)
      if (m < mr) std::memset(ap, 0, sizeof(float) * static_cast<size_t>(kc * mr));
      for (int64_t k = 0; k < kc; ++k) {
        float* dst = ap + k * mr;
        for (int64_t i = 0; i < m; ++i) dst[i] = src[i * A.rs + k * A.cs];
      }
    }
    ap += mr * kc;
  }
}

// Bp: panels of nr columns, each stored k-major (kc x nr), zero-padded columns.
void pack_b_block(const Matrix& B, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float* bp) {
  if (B.cs == 1) {
    // Row-major B: read each source row once, sequentially, and scatter it
    // over the panels; walking panel by panel would touch kc rows at once.
    const int64_t full = nc / nr * nr;
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B.p + (k0 + k) * B.rs + j0;
      float* dst = bp + k * nr;
      for (int64_t jr = 0; jr < full; jr += nr) std::memcpy(dst + jr * kc, src + jr, sizeof(float) * nr);
      if (full < nc) {
        float* d = dst + full * kc;
        std::memcpy(d, src + full, sizeof(float) * (nc - full));
        std::memset(d + (nc - full), 0, sizeof(float) * (nr - (nc - full)));
      }
    }
    return;
  }
  for (int64_t jr = 0; jr < nc; jr += nr) {
    const int64_t n = std::min<int64_t>(nr, nc - jr);
    const float* src = B.p + k0 * B.rs + (j0 + jr) * B.cs;
    if (B.cs == 1 && n == nr) {
      for (int64_t k = 0; k < kc; ++k) std::memcpy(bp + k * nr, src + k * B.rs, sizeof(float) * nr);
    } else if (B.cs == 1) {
      for (int64_t k = 0; k < kc; ++k) {
        float* dst = bp + k * nr;
        std::memcpy(dst, src + k * B.rs, sizeof(float) * n);
        std::memset(dst + n, 0, sizeof(float) * (nr - n));
      }
    } else {
      // Transposed B: walk each source column contiguously in k.
      for (int64_t k = 0; k < kc; ++k) std::memset(bp + k * nr + n, 0, sizeof(float) * (nr - n));
      for (int64_t j = 0; j < n; ++j) {
        const float* col = src + j * B.cs;
        for (int64_t k = 0; k < kc; ++k) bp[k * nr + j] = col[k * B.rs];
      }
    }
    bp += nr * kc;
  }
}

// The macro-kernel: C[ic : ic+mc, jc : jc+nc] (=|+=) Ap (mc x kc packed) * Bp (kc x nc packed),
// the epilogue applied when this is the last K block.
void macro_kernel(const Variant& v, const float* apb, int64_t mc, const float* bp, int64_t nc, int64_t kc,
                  float* C, int64_t ldc, int64_t ic, int64_t jc, bool first, bool last, const Epilogue& ep) {
  const int mr = v.mr, nr = v.nr;
  alignas(64) float tile[16 * 16];
  // A plain product (MatMul) has no epilogue: the plain kernel stores it, without the fused
  // kernel's per-row epilogue calls (which spill the accumulators around each call).
  const bool apply_ep = last && !identity_epilogue(ep);
  const bool fused_ep = apply_ep && v.ukernel_ep && simple_epilogue(ep);
  int64_t jr0 = 0;
  if (mc == 1 && v.ukernel_row) {
    // A single row (batch-1 fully connected) streams B: several panels at once (UKernelRow).
    // 1-row Gemm over 4096x4096 packed weights, in process against one panel at a time:
    // 11.0 -> 13.4 GB/s on 1 thread, 14.5 -> 16.5 on 2.
    const int64_t span = int64_t{v.row_panels} * nr;
    for (; jr0 + span <= nc; jr0 += span) {
      float* c = C + ic * ldc + jc + jr0;
      v.ukernel_row(kc, apb, bp + jr0 * kc, kc * nr, c, !first);
      if (apply_ep) v.epilogue(c, ldc, 1, span, ic, jc + jr0, ep);
    }
  }
  for (int64_t jr = jr0; jr < nc; jr += nr) {
    const int64_t n = std::min<int64_t>(nr, nc - jr);
    const float* bpp = bp + jr * kc;
    for (int64_t ir = 0; ir < mc; ir += mr) {
      const int64_t m = std::min<int64_t>(mr, mc - ir);
      float* c = C + (ic + ir) * ldc + (jc + jr);
      const float* app = apb + ir * kc;
      if (fused_ep && n == nr && (m == mr || (m <= 4 && v.ukernel_small))) {
        v.ukernel_ep(m, kc, app, bpp, c, ldc, !first, ep, ic + ir, jc + jr);
        continue;
      }
      if (m == mr && n == nr) {
        v.ukernel(kc, app, bpp, c, ldc, !first);
      } else if (n == nr && m <= 4 && v.ukernel_small) {
        v.ukernel_small(m, kc, app, bpp, c, ldc, !first);
      } else {
        // Edge tile: compute the full tile into scratch, copy the valid part.
        if (!first) {
          for (int64_t i = 0; i < m; ++i) std::memcpy(tile + i * nr, c + i * ldc, sizeof(float) * n);
        }
        v.ukernel(kc, app, bpp, tile, nr, !first);
        for (int64_t i = 0; i < m; ++i) std::memcpy(c + i * ldc, tile + i * nr, sizeof(float) * n);
      }
      if (apply_ep) v.epilogue(c, ldc, m, n, ic + ir, jc + jr, ep);
    }
  }
}

// Serial blocked GEMM on the C block rows [m0, m1) x cols [n0, n1).
void gemm_block(const Variant& v, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, const Matrix& A,
                const Matrix& B, float* C, int64_t ldc, const Epilogue& ep, const PackedA* packed,
                const PackedB* packed_b, const BPacker* packer = nullptr) {
  if (packer) packed_b = nullptr;
  const int64_t MC = kMC / v.mr * v.mr, NC = kNC / v.nr * v.nr;
  float* bp_scratch = packed_b ? nullptr : scratch_floats(0, static_cast<size_t>(kKC * NC));
  float* ap = packed ? nullptr : scratch_floats(1, static_cast<size_t>(kKC * MC));
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = std::min(NC, n1 - jc);
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min(kKC, K - pc);
      const float* bp;
      if (packed_b) {
        bp = packed_b->block(pc, jc, kc);
      } else if (packer) {
        packer->fill(packer->ctx, pc, kc, jc, nc, bp_scratch);
        bp = bp_scratch;
      } else {
        pack_b_block(B, pc, kc, jc, nc, v.nr, bp_scratch);
        bp = bp_scratch;
      }
      for (int64_t ic = m0; ic < m1; ic += MC) {
        const int64_t mc = std::min(MC, m1 - ic);
        const float* apb;
        if (packed) {
          apb = packed->block(pc, ic, kc);
        } else {
          pack_a_block(v, A, ic, mc, pc, kc, ap);
          apb = ap;
        }
        macro_kernel(v, apb, mc, bp, nc, kc, C, ldc, ic, jc, pc == 0, pc + kc >= K, ep);
      }
    }
  }
}

}  // namespace

void sgemm_block(const Variant& v, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, const Matrix& A,
                 const Matrix& B, float* C, int64_t ldc, const Epilogue& ep, const PackedA* packed,
                 const PackedB* packed_b, const BPacker* packer) {
  if (m0 >= m1 || n0 >= n1) return;
  if (packed && (packed->variant != &v || m0 % v.mr || m1 > packed->M || packed->K != K)) {
    throw std::invalid_argument("sgemm_block: packed A does not match the variant, rows or K");
  }
  if (K <= 0) {
    for (int64_t i = m0; i < m1; ++i) std::memset(C + i * ldc + n0, 0, sizeof(float) * (n1 - n0));
    v.epilogue(C + m0 * ldc + n0, ldc, m1 - m0, n1 - n0, m0, n0, ep);
    return;
  }
  gemm_block(v, m0, m1, n0, n1, K, A, B, C, ldc, ep, packed, packed_b, packer);
}

PackedA pack_a(const Variant& v, int64_t M, int64_t K, Matrix A) {
  PackedA p;
  p.variant = &v;
  p.M = M;
  p.K = K;
  p.Mpad = (M + v.mr - 1) / v.mr * v.mr;
  p.data.assign(static_cast<size_t>(p.Mpad * K), 0.f);
  for (int64_t pc = 0; pc < K; pc += kKC) {
    const int64_t kc = std::min(kKC, K - pc);
    pack_a_block(v, A, 0, M, pc, kc, p.data.data() + pc * p.Mpad);
  }
  return p;
}

PackedB pack_b(const Variant& v, int64_t K, int64_t N, Matrix B) {
  PackedB p;
  p.variant = &v;
  p.K = K;
  p.N = N;
  p.Npad = (N + v.nr - 1) / v.nr * v.nr;
  p.data.assign(static_cast<size_t>(p.Npad * K), 0.f);
  for (int64_t pc = 0; pc < K; pc += kKC) {
    const int64_t kc = std::min(kKC, K - pc);
    pack_b_block(B, pc, kc, 0, N, v.nr, p.data.data() + pc * p.Npad);
  }
  return p;
}

void sgemm(const Variant& v, int64_t M, int64_t N, int64_t K, Matrix A, Matrix B, float* C, int64_t ldc,
           const Epilogue& ep, ThreadPool* pool, const PackedA* packed, const PackedB* packed_b) {
  if (M <= 0 || N <= 0) return;
  if (packed && (packed->variant != &v || packed->M != M || packed->K != K)) {
    throw std::invalid_argument("sgemm: packed A does not match the variant or shape");
  }
  if (packed_b && (packed_b->variant != &v || packed_b->N != N || packed_b->K != K)) {
    throw std::invalid_argument("sgemm: packed B does not match the variant or shape");
  }
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, sizeof(float) * N);
    v.epilogue(C, ldc, M, N, 0, 0, ep);
    return;
  }
  const int threads = pool ? pool->available() : 1;
  const double flops = 2.0 * M * N * K;
  if (threads <= 1 || flops < 2.0e6) {
    gemm_block(v, 0, M, 0, N, K, A, B, C, ldc, ep, packed, packed_b);
    return;
  }
  // Split C into a tm x tn grid of near-square blocks, one per thread; each
  // thread packs its own panels (duplicated packing is O(MK + KN)).
  int best_tm = 1, best_tn = threads;
  double best = 1e300;
  for (int tm = 1; tm <= threads; ++tm) {
    if (threads % tm) continue;
    const int tn = threads / tm;
    const double bm = std::ceil(static_cast<double>(M) / tm / v.mr) * v.mr;
    const double bn = std::ceil(static_cast<double>(N) / tn / v.nr) * v.nr;
    if ((tm > 1 && M < tm * v.mr) || (tn > 1 && N < tn * v.nr)) continue;
    const double cost = bm * bn * (tm * tn) + (bm + bn) * 64.0;  // padding waste + packing
    if (cost < best) best = cost, best_tm = tm, best_tn = tn;
  }
  const int tm = best_tm, tn = best_tn;
  const int64_t bm = (M + tm - 1) / tm, bn = (N + tn - 1) / tn;
  // Row blocks start at multiples of mr so pre-packed A panels line up.
  const int64_t bm_al = (bm + v.mr - 1) / v.mr * v.mr;
  const int64_t bn_al = (bn + v.nr - 1) / v.nr * v.nr;
  pool->run_tasks(static_cast<int64_t>(tm) * tn, [&](int64_t t) {
    const int64_t i = t / tn, j = t % tn;
    const int64_t m0 = std::min(M, i * bm_al), m1 = std::min(M, (i + 1) * bm_al);
    const int64_t n0 = std::min(N, j * bn_al), n1 = std::min(N, (j + 1) * bn_al);
    if (m0 < m1 && n0 < n1) gemm_block(v, m0, m1, n0, n1, K, A, B, C, ldc, ep, packed, packed_b);
  });
}

}  // namespace gemm
}  // namespace infopt
