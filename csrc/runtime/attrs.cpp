#include "runtime/attrs.h"

#include <stdexcept>

namespace infopt {

void Attrs::fail(const std::string& name, const std::string& msg) const {
  throw std::invalid_argument(op_ + ": attribute '" + name + "' " + msg);
}

void Attrs::allow(std::initializer_list<const char*> names) const {
  for (const auto& kv : values_) {
    bool ok = false;
    for (const char* n : names) ok = ok || kv.first == n;
    if (!ok) fail(kv.first, "is not supported by the native kernel");
  }
}

int64_t Attrs::get_int(const std::string& name, int64_t dflt) const {
  auto it = values_.find(name);
  if (it == values_.end()) return dflt;
  if (auto p = std::get_if<int64_t>(&it->second)) return *p;
  fail(name, "must be an int");
}

double Attrs::get_float(const std::string& name, double dflt) const {
  auto it = values_.find(name);
  if (it == values_.end()) return dflt;
  if (auto p = std::get_if<double>(&it->second)) return *p;
  if (auto p = std::get_if<int64_t>(&it->second)) return static_cast<double>(*p);
  fail(name, "must be a float");
}

std::string Attrs::get_str(const std::string& name, const std::string& dflt) const {
  auto it = values_.find(name);
  if (it == values_.end()) return dflt;
  if (auto p = std::get_if<std::string>(&it->second)) return *p;
  fail(name, "must be a string");
}

std::vector<int64_t> Attrs::get_ints(const std::string& name, const std::vector<int64_t>& dflt) const {
  auto it = values_.find(name);
  if (it == values_.end()) return dflt;
  if (auto p = std::get_if<std::vector<int64_t>>(&it->second)) return *p;
  if (auto p = std::get_if<int64_t>(&it->second)) return {*p};
  if (auto p = std::get_if<std::vector<double>>(&it->second)) {
    if (p->empty()) return {};
  }
  fail(name, "must be a list of ints");
}

std::vector<double> Attrs::get_floats(const std::string& name, const std::vector<double>& dflt) const {
  auto it = values_.find(name);
  if (it == values_.end()) return dflt;
  if (auto p = std::get_if<std::vector<double>>(&it->second)) return *p;
  if (auto p = std::get_if<std::vector<int64_t>>(&it->second)) return {p->begin(), p->end()};
  if (auto p = std::get_if<double>(&it->second)) return {*p};
  if (auto p = std::get_if<int64_t>(&it->second)) return {static_cast<double>(*p)};
  fail(name, "must be a list of floats");
}

}  // namespace infopt
