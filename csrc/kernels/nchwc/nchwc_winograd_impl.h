// Winograd F(m x m, 3 x 3) tile transforms of the NCHWc family (m = 2 or 4), compiled once per
// ISA like nchwc_impl.h: include inside a per-ISA namespace after <cstring> and nchwc.h. One
// 8-lane vector (GCC vector extension) is one pixel of 8 channels, so each transform is a few
// dozen vector adds and FMAs per tile and channel group: one YMM op each in the AVX2 file, two
// SSE ops in the baseline one. The matrices and the algorithm are described in nchwc_winograd.cpp.

using infopt::nchwc::WinoInput;
using infopt::nchwc::WinoOutput;

// 32-byte vectors in the baseline file too (two SSE registers); every function here is inlined,
// so the ABI note GCC gives for returning them without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float wino_v8 __attribute__((vector_size(32)));

inline wino_v8 wino_load(const float* p) {
  wino_v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void wino_store(float* p, wino_v8 v) { std::memcpy(p, &v, sizeof v); }

template <int M>
struct WinoMatrices;

// Interpolation points 0, 1, -1 (and infinity).
template <>
struct WinoMatrices<2> {
  static constexpr int A = 4;
  static constexpr float BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};

// Interpolation points 0, 1, -1, 2, -2 (and infinity).
template <>
struct WinoMatrices<4> {
  static constexpr int A = 6;
  static constexpr float BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float AT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

// out[r * os] = sum_k T[r][k] * in[k * is] for the R rows of the constant matrix T (R x K). Fully
// unrolled, so zero coefficients vanish and +-1 become adds and subtracts at compile time.
template <int R, int K>
inline __attribute__((always_inline)) void wino_combine(const float (&T)[R][K], const wino_v8* in, int is,
                                                        wino_v8* out, int os) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    wino_v8 acc = {};
    bool first = true;
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) {
      const float c = T[r][k];
      const wino_v8 x = in[k * is];
      if (c == 0.f) continue;
      if (first) {
        acc = c == 1.f ? x : c == -1.f ? -x : x * c;
      } else {
        acc = c == 1.f ? acc + x : c == -1.f ? acc - x : acc + x * c;
      }
      first = false;
    }
    out[r * os] = acc;
  }
}

// V = B^T d B for the tiles [t0, t0 + count) and all channel groups.
template <int M>
void wino_input(const WinoInput& a) {
  using W = WinoMatrices<M>;
  constexpr int A = W::A;
  const int64_t row = a.w * 8, plane = a.h * row;
  for (int64_t g = 0; g < a.groups; ++g) {
    for (int64_t t = 0; t < a.count; ++t) {
      const int64_t ty = (a.t0 + t) / a.tw, tx = (a.t0 + t) % a.tw;
      const int64_t r0 = ty * M - a.top, c0 = tx * M - a.left;
      const float* x = a.x + g * plane;
      wino_v8 d[A][A], u[A][A], v[A];
      if (r0 >= 0 && c0 >= 0 && r0 + A <= a.h && c0 + A <= a.w) {
        const float* p = x + r0 * row + c0 * 8;
#pragma GCC unroll 8
        for (int i = 0; i < A; ++i)
#pragma GCC unroll 8
          for (int j = 0; j < A; ++j) d[i][j] = wino_load(p + i * row + j * 8);
      } else {  // a border tile: zeros for the padding (and past the last row / column)
        for (int i = 0; i < A; ++i)
          for (int j = 0; j < A; ++j) {
            const int64_t r = r0 + i, c = c0 + j;
            d[i][j] = r >= 0 && r < a.h && c >= 0 && c < a.w ? wino_load(x + r * row + c * 8) : wino_v8{};
          }
      }
#pragma GCC unroll 8
      for (int j = 0; j < A; ++j) wino_combine(W::BT, &d[0][j], A, &u[0][j], A);
      float* out = a.v + g * a.vstride + t * 8;
#pragma GCC unroll 8
      for (int i = 0; i < A; ++i) {
        wino_combine(W::BT, &u[i][0], 1, v, 1);
#pragma GCC unroll 8
        for (int j = 0; j < A; ++j) wino_store(out + (i * A + j) * a.groups * a.vstride, v[j]);
      }
    }
  }
}

// Y = act(A^T m A + bias (+ Z)) for the tiles [t0, t0 + count) and the nb blocks, clipped to
// the output. Relu and Clip keep NaN as the direct conv's epilogue does.
template <int M>
void wino_output(const WinoOutput& a) {
  using W = WinoMatrices<M>;
  constexpr int A = W::A;
  const gemm::Act kind = a.act.kind;
  const wino_v8 zero = {}, lo = zero + a.act.p0, hi = zero + a.act.p1;
  for (int b = 0; b < a.nb; ++b) {
    const wino_v8 bias = a.bias ? wino_load(a.bias + b * 8) : zero;
    for (int64_t t = 0; t < a.count; ++t) {
      const int64_t ty = (a.t0 + t) / a.tw, tx = (a.t0 + t) % a.tw;
      const float* m = a.m + b * a.mstride + t * 8;
      wino_v8 d[A][A], u[M][A], o[M][M];
#pragma GCC unroll 8
      for (int i = 0; i < A; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < A; ++j) d[i][j] = wino_load(m + (i * A + j) * a.nb * a.mstride);
#pragma GCC unroll 8
      for (int j = 0; j < A; ++j) wino_combine(W::AT, &d[0][j], A, &u[0][j], A);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) wino_combine(W::AT, &u[i][0], 1, &o[i][0], 1);
      const int64_t rows = std::min<int64_t>(M, a.oh - ty * M), cols = std::min<int64_t>(M, a.ow - tx * M);
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t off = b * a.ystride + ((ty * M + i) * a.ow + tx * M) * 8;
        float* y = a.y + off;
        const float* z = a.z ? a.z + off : nullptr;
        for (int64_t j = 0; j < cols; ++j) {
          wino_v8 v = o[i][j] + bias;
          if (z) v += wino_load(z + j * 8);
          if (kind == gemm::Act::Relu) v = v < zero ? zero : v;
          if (kind == gemm::Act::Clip) v = v > hi ? hi : (v < lo ? lo : v);
          wino_store(y + j * 8, v);
        }
        if (kind != gemm::Act::None && kind != gemm::Act::Relu && kind != gemm::Act::Clip) a.act_fn(y, cols * 8, a.act);
      }
    }
  }
}
