// Tensor descriptors shared by the runtime and the kernels. A Tensor never
// owns memory: buffers belong to the executor (arena, heap), a constant, a
// feed or a Python object kept alive for the run.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace infopt {

// Codes follow onnx.TensorProto.DataType so both sides agree on numbering.
enum class DType : int32_t {
  Undefined = 0,
  Float32 = 1,
  UInt8 = 2,
  Int8 = 3,
  UInt16 = 4,
  Int16 = 5,
  Int32 = 6,
  Int64 = 7,
  Bool = 9,
  Float16 = 10,
  Float64 = 11,
  UInt32 = 12,
  UInt64 = 13,
};

size_t dtype_size(DType dt);
const char* dtype_name(DType dt);

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

struct Tensor {
  DType dtype = DType::Undefined;
  Shape shape;
  void* data = nullptr;

  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
  int64_t dim(int64_t i) const { return shape[static_cast<size_t>(i)]; }
  template <class T>
  T* ptr() const { return static_cast<T*>(data); }
  std::string desc() const;  // "f32[1,3,224,224]"
};

// 64-byte aligned heap block.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t nbytes);
  ~AlignedBuffer();
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  void* data() const { return ptr_; }
  size_t size() const { return size_; }
  // Gives up ownership; free the result with aligned_free().
  void* release();

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

void* aligned_malloc(size_t nbytes);  // never returns null (throws bad_alloc); 0 bytes -> valid pointer
void aligned_free(void* p);

constexpr size_t kAlignment = 64;
inline size_t align_up(size_t n, size_t a = kAlignment) { return (n + a - 1) / a * a; }

// Resolve a possibly negative axis against rank; throws invalid_argument naming `what`.
int64_t normalize_axis(int64_t axis, int64_t rank, const char* what);

// Thread-local scratch that grows and is reused across calls (im2col, packing).
float* scratch_floats(int slot, size_t count);

}  // namespace infopt
