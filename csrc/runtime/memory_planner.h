// Offline arena planning: given each buffer's live interval (in step indices)
// and size, assign offsets so that buffers whose intervals overlap never
// share bytes, using greedy best-fit in order of decreasing size.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace infopt {

struct BufferRequest {
  int64_t first = 0;  // step that writes the buffer
  int64_t last = 0;   // last step that reads it (inclusive)
  size_t bytes = 0;
};

struct ArenaLayout {
  std::vector<size_t> offsets;  // per request, 64-byte aligned
  size_t total_bytes = 0;
};

ArenaLayout plan_arena(const std::vector<BufferRequest>& requests);

}  // namespace infopt
