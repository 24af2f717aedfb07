// numpy <-> Tensor conversion and the Python-callback step. Kept apart from
// the executor so the runtime core has no Python dependency.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "runtime/program.h"

namespace infopt {

DType dtype_from_numpy(const pybind11::dtype& dt, const std::string& what);
pybind11::dtype dtype_to_numpy(DType dt);

// A C-contiguous array (copied only when the input is not).
pybind11::array as_contiguous(const pybind11::handle& obj);

// Tensor viewing a (C-contiguous) numpy array's memory.
Tensor tensor_view(const pybind11::array& a, const std::string& what);

// shared_ptr that keeps a Python object alive; safe to drop without the GIL.
std::shared_ptr<void> hold_pyobject(pybind11::object obj);

// numpy array that owns `buffer` (no copy).
pybind11::array to_numpy(const RunOutput& out);

// Read-only numpy view of `t` whose base keeps `owner` alive.
pybind11::array readonly_view(const Tensor& t, const std::shared_ptr<void>& owner);

// Python fallback step: fn(list[ndarray | None]) -> sequence[ndarray].
// Results are kept alive as returned when they are C-contiguous arrays that own
// their memory; anything else (views, other layouts, scalars) is copied so a
// result can never alias an input, the arena or a feed.
class PyHostStep : public HostStep {
 public:
  PyHostStep(pybind11::function fn, std::string label) : fn_(std::move(fn)), label_(std::move(label)) {}
  ~PyHostStep() override;
  void call(const std::vector<const Tensor*>& inputs, const std::vector<std::shared_ptr<void>>& owners,
            std::vector<Tensor>& outputs, std::vector<std::shared_ptr<void>>& output_owners) override;

 private:
  pybind11::function fn_;
  std::string label_;
};

}  // namespace infopt
