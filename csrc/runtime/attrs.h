// Node attributes as passed from Python (ONNX names, ONNX defaults applied by
// the kernels). Every accessor names the op and attribute in its errors.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace infopt {

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

class Attrs {
 public:
  Attrs() = default;
  Attrs(std::string op, std::map<std::string, AttrValue> values)
      : op_(std::move(op)), values_(std::move(values)) {}

  const std::string& op() const { return op_; }
  bool has(const std::string& name) const { return values_.count(name) != 0; }

  // Rejects attributes the kernel does not know, so an unsupported feature
  // fails at add time instead of being silently ignored.
  void allow(std::initializer_list<const char*> names) const;

  int64_t get_int(const std::string& name, int64_t dflt) const;
  double get_float(const std::string& name, double dflt) const;
  std::string get_str(const std::string& name, const std::string& dflt) const;
  std::vector<int64_t> get_ints(const std::string& name, const std::vector<int64_t>& dflt = {}) const;
  std::vector<double> get_floats(const std::string& name, const std::vector<double>& dflt = {}) const;

  [[noreturn]] void fail(const std::string& name, const std::string& msg) const;

 private:
  std::string op_;
  std::map<std::string, AttrValue> values_;
};

}  // namespace infopt
