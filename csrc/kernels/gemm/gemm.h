// Single-precision GEMM: packed, cache-blocked (MC/KC/NC), with a register-
// tile micro-kernel per ISA and an epilogue fused into the write-back.
//
//   C(i,j) = act(alpha * sum_k A(i,k) B(k,j) + bias.scale * bias(i,j) + residual(i,j))
//
// Matrices are described by element strides, so transposed operands and
// broadcast addends (stride 0) need no copies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "cpu_features.h"

namespace infopt {
class ThreadPool;

namespace gemm {

enum class Act : int { None, Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish, Gelu, GeluTanh };

struct Activation {
  Act kind = Act::None;
  float p0 = 0.f, p1 = 0.f;  // LeakyRelu alpha; Clip min,max; HardSigmoid alpha,beta
};

// Parses the `activation` / `activation_params` attributes of infopt fused ops.
// Throws std::invalid_argument naming `op` on an unknown name or bad params.
Activation parse_activation(const std::string& op, const std::string& name, const std::vector<double>& params);

struct Addend {
  const float* ptr = nullptr;  // element (i,j) at ptr[i*rs + j*cs]; null = absent
  int64_t rs = 0, cs = 0;
  float scale = 1.f;
};

struct Epilogue {
  float alpha = 1.f;
  Addend bias;
  Addend residual;
  Activation act;
};

struct Matrix {
  const float* p;
  int64_t rs, cs;  // element (i,j) at p[i*rs + j*cs]
};

// Micro-kernel: C[0:mr, 0:nr] (=|+=) Ap(mr x kc, packed) * Bp(kc x nr, packed).
using UKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);
// Applies the epilogue to the m x n block of C at (i0, j0) of the full matrix.
using EpilogueFn = void (*)(float* c, int64_t ldc, int64_t m, int64_t n, int64_t i0, int64_t j0,
                            const Epilogue& ep);
// Applies only the activation to n contiguous floats.
using ActivationFn = void (*)(float* x, int64_t n, const Activation& act);

// Rows 0..m-1 (m < mr, m <= 4) of the micro-kernel, written straight to C: the
// small-M (batch-1 fully connected) path, bound by streaming B. May be null.
using UKernelSmall = void (*)(int64_t m, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                              bool accumulate);

// A full mr x nr tile with the epilogue applied in registers before the one
// store, for a "simple" epilogue (see simple_epilogue): without it a tile is
// stored, re-read by the epilogue and stored again, which costs as much as
// the arithmetic when K is small (1x1 convs with K = 16..64). m rows (mr, or
// <= 4 where ukernel_small exists) of a full nr-wide panel; (i0, j0) is the
// tile's place in the full C. May be null.
using UKernelEp = void (*)(int64_t m, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                           const Epilogue& ep, int64_t i0, int64_t j0);

// Packs one full mr-row panel of a row-major A (rows `rs` floats apart, unit column stride):
// kc columns into dst, k-major (dst[k*mr + i] = src[i*rs + k]). May be null (generic loop).
using PackAPanel = void (*)(const float* src, int64_t rs, int64_t kc, float* dst);

// One row of C over `panels` consecutive full nr-wide B panels (each kc x nr, `panel_stride`
// floats apart): c[0, 0 : panels*nr] (=|+=) a (a packed mr-row panel, row 0 used) * B. Reading
// the panels side by side keeps several memory streams in flight, which a 1-row product (a
// batch-1 fully connected layer) is bound by. May be null.
using UKernelRow = void (*)(int64_t kc, const float* a, const float* b, int64_t panel_stride, float* c,
                            bool accumulate);

struct Variant {
  const char* name;
  Isa isa;
  int mr, nr;
  UKernel ukernel;
  EpilogueFn epilogue;
  ActivationFn activation;
  UKernelSmall ukernel_small;
  UKernelEp ukernel_ep = nullptr;
  PackAPanel pack_a_panel = nullptr;
  UKernelRow ukernel_row = nullptr;
  int row_panels = 0;  // panels ukernel_row reads at once
};

// Nothing to apply: C is the product itself.
inline bool identity_epilogue(const Epilogue& ep) {
  return ep.alpha == 1.f && !ep.bias.ptr && !ep.residual.ptr && ep.act.kind == Act::None;
}

// The epilogues a UKernelEp handles: alpha 1; bias absent, constant along a row
// (per output channel of a conv: cs 0) or the same row for every row (MatMul's
// bias: rs 0, cs 1); residual contiguous along a row or absent; activation
// None, Relu, Clip, or the polynomial Sigmoid / Tanh / Gelu / GeluTanh.
inline bool simple_epilogue(const Epilogue& ep) {
  const Act k = ep.act.kind;
  return ep.alpha == 1.f && (!ep.bias.ptr || ep.bias.cs == 0 || (ep.bias.cs == 1 && ep.bias.rs == 0)) &&
         (!ep.residual.ptr || ep.residual.cs == 1) &&
         (k == Act::None || k == Act::Relu || k == Act::Clip || k == Act::Sigmoid || k == Act::Tanh ||
          k == Act::Gelu || k == Act::GeluTanh);
}

// Every compiled-in variant (dispatch, tests and benchmarks use this table).
const std::vector<const Variant*>& variants();
const Variant& variant_for(Isa isa);

constexpr int64_t kKC = 256;
constexpr int64_t kMC = 144;   // multiple of every mr (4, 6)
constexpr int64_t kNC = 4096;  // multiple of every nr (8, 16)

// A packed once for repeated use (constant weights): panels of mr rows per KC block.
struct PackedA {
  const Variant* variant = nullptr;
  int64_t M = 0, K = 0, Mpad = 0;
  std::vector<float> data;
  const float* block(int64_t pc, int64_t ic, int64_t kc) const { return data.data() + pc * Mpad + ic * kc; }
};

PackedA pack_a(const Variant& v, int64_t M, int64_t K, Matrix A);

// Packed-weight storage: 64-byte aligned (micro-kernels use aligned loads); blocks of 4 MiB
// and more are 2 MiB aligned and advised into transparent huge pages.
void* allocate_weights(size_t bytes);
void free_weights(void* p, size_t bytes);

// std::vector storage on 64-byte boundaries (micro-kernels use aligned loads of B).
template <class T>
struct AlignedAlloc {
  using value_type = T;
  AlignedAlloc() = default;
  template <class U>
  AlignedAlloc(const AlignedAlloc<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(allocate_weights(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { free_weights(p, n * sizeof(T)); }
  bool operator==(const AlignedAlloc&) const { return true; }
  bool operator!=(const AlignedAlloc&) const { return false; }
};

// B packed once (constant weights of Gemm / MatMul): panels of nr columns per KC block.
struct PackedB {
  const Variant* variant = nullptr;
  int64_t K = 0, N = 0, Npad = 0;
  std::vector<float, AlignedAlloc<float>> data;
  const float* ptr = nullptr;  // when set, panels live there (64-byte aligned) instead of `data`
  const float* block(int64_t pc, int64_t jc, int64_t kc) const {
    return (ptr ? ptr : data.data()) + pc * Npad + jc * kc;
  }
};

PackedB pack_b(const Variant& v, int64_t K, int64_t N, Matrix B);

// C is M x N with row stride ldc. `pool` may be null (serial). `packed`, when
// given, replaces A and must come from pack_a with the same variant; likewise
// `packed_b` replaces B.
void sgemm(const Variant& v, int64_t M, int64_t N, int64_t K, Matrix A, Matrix B, float* C, int64_t ldc,
           const Epilogue& ep, ThreadPool* pool, const PackedA* packed = nullptr, const PackedB* packed_b = nullptr);

// B produced on demand (Conv's im2col): fill(ctx, k0, kc, j0, nc, dst) writes rows [k0, k0+kc)
// x columns [j0, j0+nc) in packed-B panel layout (panels of nr columns, each kc x nr, the last
// zero-padded), like the driver's own packing, just before the block is used, so the panels are
// still in L1/L2 when the micro-kernel reads them.
struct BPacker {
  void (*fill)(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* dst) = nullptr;
  const void* ctx = nullptr;
};

// Serial blocked GEMM on the block rows [m0, m1) x columns [n0, n1) of the
// same problem (callers that partition the work themselves, e.g. Conv). m0
// must be a multiple of v.mr when `packed` is given. `packer`, when given,
// replaces B (and `packed_b`).
void sgemm_block(const Variant& v, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, const Matrix& A,
                 const Matrix& B, float* C, int64_t ldc, const Epilogue& ep, const PackedA* packed = nullptr,
                 const PackedB* packed_b = nullptr, const BPacker* packer = nullptr);

// Variants defined in the per-ISA files.
const Variant& scalar_variant();
#if defined(INFOPT_HAVE_AVX2)
const Variant& avx2_variant();
#endif

}  // namespace gemm
}  // namespace infopt
