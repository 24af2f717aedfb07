#include "runtime/tensor.h"

#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>

namespace infopt {

size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::Float32: case DType::Int32: case DType::UInt32: return 4;
    case DType::Int64: case DType::UInt64: case DType::Float64: return 8;
    case DType::UInt8: case DType::Int8: case DType::Bool: return 1;
    case DType::UInt16: case DType::Int16: case DType::Float16: return 2;
    case DType::Undefined: break;
  }
  return 0;
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::Float32: return "f32";
    case DType::UInt8: return "u8";
    case DType::Int8: return "i8";
    case DType::UInt16: return "u16";
    case DType::Int16: return "i16";
    case DType::Int32: return "i32";
    case DType::Int64: return "i64";
    case DType::Bool: return "bool";
    case DType::Float16: return "f16";
    case DType::Float64: return "f64";
    case DType::UInt32: return "u32";
    case DType::UInt64: return "u64";
    case DType::Undefined: break;
  }
  return "undefined";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ",";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

std::string Tensor::desc() const { return std::string(dtype_name(dtype)) + shape_str(shape); }

// Over-allocated with malloc and aligned by hand, the block malloc returned stored just below
// the aligned address. Not aligned_alloc: glibc serves a large aligned_alloc from a fresh mmap
// every time (its padded request never falls under the mmap threshold that freeing the last
// one raised), so each run's 16 MiB output took 4096 page faults (11-16 ms of a 2048^3 MatMul,
// measured by getrusage); malloc's blocks of a repeated size are reused, as numpy's are.
void* aligned_malloc(size_t nbytes) {
  constexpr size_t header = sizeof(void*);
  void* raw = std::malloc(nbytes + kAlignment + header);
  if (!raw) throw std::bad_alloc();
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw) + header;
  void* p = reinterpret_cast<void*>((base + kAlignment - 1) & ~(uintptr_t{kAlignment} - 1));
  static_cast<void**>(p)[-1] = raw;
  return p;
}

void aligned_free(void* p) {
  if (p) std::free(static_cast<void**>(p)[-1]);
}

AlignedBuffer::AlignedBuffer(size_t nbytes) : ptr_(aligned_malloc(nbytes)), size_(nbytes) {}
AlignedBuffer::~AlignedBuffer() { aligned_free(ptr_); }
void* AlignedBuffer::release() {
  void* p = ptr_;
  ptr_ = nullptr;
  size_ = 0;
  return p;
}

int64_t normalize_axis(int64_t axis, int64_t rank, const char* what) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    throw std::invalid_argument(std::string(what) + ": axis " + std::to_string(axis) +
                                " out of range for rank " + std::to_string(rank));
  }
  return a;
}

namespace {
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  ~Scratch() { aligned_free(p); }
};
}  // namespace

float* scratch_floats(int slot, size_t count) {
  thread_local Scratch slots[8];
  if (slot < 0 || slot >= 8) throw std::logic_error("scratch slot out of range");
  Scratch& s = slots[slot];
  if (s.cap < count) {
    aligned_free(s.p);
    s.p = nullptr;
    s.cap = 0;
    s.p = static_cast<float*>(aligned_malloc(count * sizeof(float)));
    s.cap = count;
  }
  return s.p;
}

}  // namespace infopt
