// The contract between the executor and a native op.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "runtime/attrs.h"
#include "runtime/tensor.h"

namespace infopt {
class ThreadPool;

// What a kernel sees while it runs: its inputs, and a way to get outputs.
// The executor decides where outputs live (planned arena slot, heap, or a
// graph-output buffer); the kernel only states dtype and shape.
class StepIO {
 public:
  virtual ~StepIO() = default;
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  // nullptr when the optional input is omitted (or past the end).
  const Tensor* input(int i) const { return i < num_inputs() ? inputs_[static_cast<size_t>(i)] : nullptr; }
  int num_outputs() const { return num_outputs_; }
  virtual bool has_output(int i) const = 0;
  virtual Tensor& output(int i, DType dtype, const Shape& shape) = 0;
  // Output i shares input `in`'s buffer with a new shape (view ops).
  virtual void alias_output(int i, int in, const Shape& shape) = 0;
  ThreadPool* pool() const { return pool_; }
  Isa isa() const { return isa_; }

 protected:
  std::vector<const Tensor*> inputs_;
  int num_outputs_ = 0;
  ThreadPool* pool_ = nullptr;
  Isa isa_ = Isa::Scalar;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(StepIO& io) const = 0;
  // Input index whose buffer output `out` aliases (view ops), or -1.
  virtual int view_of(int out) const { return -1; }
  // Inputs, in order of preference, whose buffer output 0 may overwrite when
  // that input dies at this step and has the output's byte size: the kernel
  // never reads element k of the input after writing element k of the output
  // (elementwise ops, row-wise normalisations).
  virtual std::vector<int> inplace_inputs() const { return {}; }
  // Called once before the first run; constants[i] is the constant input i or
  // nullptr. Lets kernels pre-pack weights for the Program's ISA.
  virtual void prepare(const std::vector<const Tensor*>& constants, Isa isa) {}
  // After prepare(): true when the kernel reads constant input `i` only from
  // its own pre-packed copy. The executor may then free the original; it keeps
  // passing the same Tensor, whose data pointer then only identifies it.
  virtual bool reads_only_packed(int i) const { return false; }
};

using KernelFactory = std::unique_ptr<Kernel> (*)(const Attrs& attrs, int num_inputs, int num_outputs);

struct OpDef {
  std::string name;  // "Conv", "infopt.FusedConv"
  KernelFactory make;
  int min_inputs, max_inputs, min_outputs, max_outputs;
};

// Builds the kernel for `op`, validating input/output counts and attributes.
// Throws std::invalid_argument naming the op (and attribute) on failure.
std::unique_ptr<Kernel> make_kernel(const std::string& op, const Attrs& attrs, int num_inputs, int num_outputs);
std::vector<std::string> native_ops();
// Ops whose kernels accept more than float32 in their data input(s), with the
// numpy names of those dtypes. Ops not listed take float32 data only. The
// data inputs are input 0 (and 1 for binary ops), X / Y for Where; index-like
// inputs (shape, pads, axes, repeats, split, k) are int64 or int32.
std::map<std::string, std::vector<std::string>> native_op_dtypes();

// Per-family registration (one explicit list in registry.cpp).
void register_gemm_ops(std::vector<OpDef>& ops);
void register_conv_ops(std::vector<OpDef>& ops);
void register_pool_ops(std::vector<OpDef>& ops);
void register_elementwise_ops(std::vector<OpDef>& ops);
void register_norm_ops(std::vector<OpDef>& ops);
void register_shape_ops(std::vector<OpDef>& ops);
void register_reduce_ops(std::vector<OpDef>& ops);
void register_tensor_ops(std::vector<OpDef>& ops);
void register_resize_ops(std::vector<OpDef>& ops);
void register_attention_ops(std::vector<OpDef>& ops);
void register_gather_ops(std::vector<OpDef>& ops);
void register_nchwc_ops(std::vector<OpDef>& ops);

// Helpers for argument checks; messages name the tensor and its shape.
const Tensor& require_input(const StepIO& io, int i, const char* name);
const Tensor& require_f32(const StepIO& io, int i, const char* name);
[[noreturn]] void fail_shape(const std::string& msg);

}  // namespace infopt
