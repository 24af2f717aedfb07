#include <algorithm>
#include <map>
#include <stdexcept>

#include "kernels/kernel.h"

namespace infopt {
namespace {

const std::vector<OpDef>& registry() {
  static const std::vector<OpDef> ops = [] {
    std::vector<OpDef> r;
    register_gemm_ops(r);
    register_conv_ops(r);
    register_pool_ops(r);
    register_elementwise_ops(r);
    register_norm_ops(r);
    register_shape_ops(r);
    register_reduce_ops(r);
    register_tensor_ops(r);
    register_resize_ops(r);
    register_attention_ops(r);
    register_gather_ops(r);
    register_nchwc_ops(r);
    std::sort(r.begin(), r.end(), [](const OpDef& a, const OpDef& b) { return a.name < b.name; });
    return r;
  }();
  return ops;
}

}  // namespace

std::unique_ptr<Kernel> make_kernel(const std::string& op, const Attrs& attrs, int num_inputs, int num_outputs) {
  for (const OpDef& d : registry()) {
    if (d.name != op) continue;
    if (num_inputs < d.min_inputs || num_inputs > d.max_inputs) {
      throw std::invalid_argument(op + ": expected " + std::to_string(d.min_inputs) + ".." +
                                  std::to_string(d.max_inputs) + " inputs, got " + std::to_string(num_inputs));
    }
    if (num_outputs < d.min_outputs || num_outputs > d.max_outputs) {
      throw std::invalid_argument(op + ": expected " + std::to_string(d.min_outputs) + ".." +
                                  std::to_string(d.max_outputs) + " outputs, got " + std::to_string(num_outputs));
    }
    return d.make(attrs, num_inputs, num_outputs);
  }
  throw std::invalid_argument("unknown native op '" + op + "'");
}

std::vector<std::string> native_ops() {
  std::vector<std::string> names;
  for (const OpDef& d : registry()) names.push_back(d.name);
  return names;
}

std::map<std::string, std::vector<std::string>> native_op_dtypes() {
  const std::vector<std::string> all = {"float32", "float64", "float16", "int64", "int32", "int16", "int8",
                                        "uint64", "uint32", "uint16", "uint8", "bool"};
  const std::vector<std::string> arith = {"float32", "float64", "int64", "int32"};
  std::map<std::string, std::vector<std::string>> m;
  for (const char* op : {"Concat", "Reshape", "Flatten", "Transpose", "Identity", "Dropout", "Squeeze", "Unsqueeze",
                         "Gather", "GatherElements", "GatherND", "Slice", "Shape", "Expand", "Tile", "Split", "Pad", "Trilu", "Where", "Cast",
                         "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"}) {
    m[op] = all;
  }
  m["Resize"] = all;  // nearest; linear needs float32
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Sum", "Max", "Min"}) m[op] = arith;
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare",
                         "ReduceLogSum", "ReduceLogSumExp"}) {
    m[op] = arith;
  }
  for (const char* op : {"ReduceMax", "ReduceMin"}) m[op] = {"float32", "float64", "int64", "int32", "int8", "uint8", "bool"};
  for (const char* op : {"And", "Or", "Xor", "Not"}) m[op] = {"bool"};
  m["IsNaN"] = m["IsInf"] = {"float32", "float64", "float16"};
  m["Range"] = {"float32", "float64", "int64", "int32", "int16"};
  m["ConstantOfShape"] = {"int64"};  // the shape input; the output dtype comes from the `dtype` attribute
  return m;
}

const Tensor& require_input(const StepIO& io, int i, const char* name) {
  const Tensor* t = io.input(i);
  if (!t) throw std::invalid_argument(std::string("input ") + name + " is required");
  return *t;
}

const Tensor& require_f32(const StepIO& io, int i, const char* name) {
  const Tensor& t = require_input(io, i, name);
  if (t.dtype != DType::Float32) {
    throw std::invalid_argument(std::string("input ") + name + " must be float32, got " + t.desc());
  }
  return t;
}

void fail_shape(const std::string& msg) { throw std::invalid_argument(msg); }

}  // namespace infopt
