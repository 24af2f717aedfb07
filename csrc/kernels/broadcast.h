// Numpy-style broadcasting helpers shared by elementwise ops and MatMul.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace infopt {

// Broadcast shape of a and b (numpy rules); throws naming both shapes.
inline Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r, 1);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) {
      throw std::invalid_argument("shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Element strides of `in` (C-contiguous) when broadcast to `out`: 0 on broadcast dims.
inline std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t s = 1;
  for (size_t k = 0; k < in.size(); ++k) {
    const size_t i = in.size() - 1 - k;
    const size_t o = out.size() - 1 - k;
    st[o] = in[i] == 1 ? 0 : s;
    s *= in[i];
  }
  return st;
}

}  // namespace infopt

#include <array>

#include "runtime/thread_pool.h"

namespace infopt {

// K-operand broadcast walk: calls row(y_off, offs, n, vec) for contiguous runs
// of n output elements, where operand k starts at element offs[k] and advances
// by 1 per element when vec[k] (else stays on one broadcast element). Rows are
// spread over `pool` (may be null) in tasks of about `grain` elements.
template <size_t K, class Row>
void broadcast_walk(const Shape& out, const std::array<const Shape*, K>& ins, ThreadPool* pool, int64_t grain, Row row) {
  const int64_t total = shape_numel(out);
  if (total == 0) return;
  std::array<std::vector<int64_t>, K> st;
  for (size_t k = 0; k < K; ++k) st[k] = broadcast_strides(*ins[k], out);
  std::vector<int64_t> dims;
  std::array<std::vector<int64_t>, K> rs;
  for (size_t d = out.size(); d-- > 0;) {
    if (out[d] == 1) continue;
    bool merge = !dims.empty();
    for (size_t k = 0; merge && k < K; ++k) merge = st[k][d] == rs[k].back() * dims.back();
    if (merge) {
      dims.back() *= out[d];
      continue;
    }
    dims.push_back(out[d]);
    for (size_t k = 0; k < K; ++k) rs[k].push_back(st[k][d]);
  }
  if (dims.empty()) {
    dims = {1};
    for (size_t k = 0; k < K; ++k) rs[k] = {0};
  }
  const int64_t n = dims[0];
  std::array<bool, K> vec;
  for (size_t k = 0; k < K; ++k) vec[k] = rs[k][0] != 0;
  const int64_t rows = total / n;
  auto run_rows = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rem = r;
      std::array<int64_t, K> off{};
      for (size_t d = 1; d < dims.size(); ++d) {
        const int64_t i = rem % dims[d];
        rem /= dims[d];
        for (size_t k = 0; k < K; ++k) off[k] += i * rs[k][d];
      }
      for (size_t k = 0; k < K; ++k) off[k] += vec[k] ? c0 : 0;
      row(r * n + c0, off, c1 - c0, vec);
    }
  };
  if (!pool || total < 2 * grain) {
    run_rows(0, rows, 0, n);
  } else if (rows == 1) {
    pool->parallel_for(n, grain, [&](int64_t c0, int64_t c1) { run_rows(0, 1, c0, c1); });
  } else {
    pool->parallel_for(rows, std::max<int64_t>(1, grain / n), [&](int64_t r0, int64_t r1) { run_rows(r0, r1, 0, n); });
  }
}

}  // namespace infopt
