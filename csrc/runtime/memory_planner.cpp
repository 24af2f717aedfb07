#include "runtime/memory_planner.h"

#include <algorithm>
#include <numeric>

#include "runtime/tensor.h"

namespace infopt {

ArenaLayout plan_arena(const std::vector<BufferRequest>& requests) {
  const size_t n = requests.size();
  ArenaLayout layout;
  layout.offsets.assign(n, 0);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Large buffers first: they are the hardest to fit into gaps later.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (requests[a].bytes != requests[b].bytes) return requests[a].bytes > requests[b].bytes;
    return requests[a].first < requests[b].first;
  });
  std::vector<size_t> placed;
  for (size_t idx : order) {
    const BufferRequest& r = requests[idx];
    const size_t need = align_up(r.bytes);
    // Intervals already placed that are live at the same time, by offset.
    std::vector<std::pair<size_t, size_t>> busy;  // [begin, end)
    for (size_t p : placed) {
      const BufferRequest& q = requests[p];
      if (q.first <= r.last && r.first <= q.last) {
        busy.emplace_back(layout.offsets[p], layout.offsets[p] + align_up(q.bytes));
      }
    }
    std::sort(busy.begin(), busy.end());
    size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
    for (const auto& b : busy) {
      if (b.first > cursor) {
        const size_t gap = b.first - cursor;
        if (gap >= need && gap < best_gap) best = cursor, best_gap = gap;
      }
      cursor = std::max(cursor, b.second);
    }
    if (best == SIZE_MAX) best = cursor;  // append after the highest live buffer
    layout.offsets[idx] = best;
    layout.total_bytes = std::max(layout.total_bytes, best + need);
    placed.push_back(idx);
  }
  return layout;
}

}  // namespace infopt
