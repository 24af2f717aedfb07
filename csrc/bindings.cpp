// pybind11 bindings for infopt._C. Conversion and argument plumbing only;
// no kernel logic lives here.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "cpu_features.h"
#include "kernels/gemm/gemm.h"
#include "runtime/program.h"
#include "runtime/py_interop.h"

namespace py = pybind11;
using namespace infopt;

namespace {

AttrValue attr_from_python(const std::string& op, const std::string& name, const py::handle& v) {
  auto bad = [&]() -> std::invalid_argument {
    return std::invalid_argument(op + ": attribute '" + name + "' has unsupported type " +
                                 std::string(py::str(py::type::handle_of(v))));
  };
  py::module_ np = py::module_::import("numpy");
  if (py::isinstance<py::bool_>(v)) return static_cast<int64_t>(v.cast<bool>());
  if (py::isinstance<py::int_>(v) || py::isinstance(v, np.attr("integer"))) return v.cast<int64_t>();
  if (py::isinstance<py::float_>(v) || py::isinstance(v, np.attr("floating"))) return v.cast<double>();
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (py::isinstance<py::bytes>(v)) return std::string(v.cast<py::bytes>());
  py::object seq = py::reinterpret_borrow<py::object>(v);
  if (py::isinstance<py::array>(v)) seq = v.attr("tolist")();
  if (py::isinstance<py::list>(seq) || py::isinstance<py::tuple>(seq)) {
    bool all_int = true;
    for (py::handle x : seq) {
      if (py::isinstance<py::bool_>(x) || py::isinstance<py::int_>(x) || py::isinstance(x, np.attr("integer"))) continue;
      if (py::isinstance<py::float_>(x) || py::isinstance(x, np.attr("floating"))) {
        all_int = false;
        continue;
      }
      throw bad();
    }
    if (all_int) {
      std::vector<int64_t> r;
      for (py::handle x : seq) r.push_back(x.cast<int64_t>());
      return r;
    }
    std::vector<double> r;
    for (py::handle x : seq) r.push_back(x.cast<double>());
    return r;
  }
  throw bad();
}

Attrs attrs_from_dict(const std::string& op, const py::dict& d) {
  std::map<std::string, AttrValue> m;
  for (auto kv : d) {
    const std::string name = py::str(kv.first);
    m.emplace(name, attr_from_python(op, name, kv.second));
  }
  return Attrs(op, std::move(m));
}

py::dict plan_to_dict(const PlanInfo& p) {
  py::dict d;
  py::list shapes;
  for (const auto& s : p.feed_shapes) shapes.append(py::tuple(py::cast(s)));
  d["feed_shapes"] = shapes;
  d["arena_bytes"] = p.arena_bytes;
  d["unshared_bytes"] = p.unshared_bytes;
  d["arena_values"] = p.arena_values;
  d["sequence"] = p.sequence;
  d["concat_inplace_inputs"] = p.concat_inplace_inputs;
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "infopt native runtime: CPU kernels and the Program executor";

  m.def("cpu_isa", [] { return std::string(isa_name(default_isa())); },
        "ISA used by new Programs: 'avx2' or 'scalar' (INFOPT_CPU_ISA overrides).");
  m.def("cpu_supports", [](const std::string& isa) {
    if (isa == "scalar") return true;
    if (isa == "avx2") return isa_supported(Isa::Avx2);
    throw std::invalid_argument("unknown ISA '" + isa + "'");
  });
  m.def("native_ops", &native_ops, "Sorted op keys that run natively.");
  m.def("native_op_dtypes", &native_op_dtypes,
        "{op: numpy dtype names its data inputs accept} for ops that take more than float32.");
  m.def("gemm_variants", [] {
    std::vector<std::string> names;
    for (const auto* v : gemm::variants()) {
      if (isa_supported(v->isa)) names.push_back(v->name);
    }
    return names;
  });

  py::class_<Program>(m, "Program")
      .def(py::init([](int num_threads, py::object isa) {
             Isa i = isa.is_none() ? default_isa() : parse_isa(isa.cast<std::string>());
             return std::make_unique<Program>(num_threads, i);
           }),
           py::arg("num_threads") = 0, py::arg("isa") = py::none())
      .def_property_readonly("num_threads", &Program::num_threads)
      .def_property_readonly("isa", [](const Program& p) { return std::string(isa_name(p.isa())); })
      .def("add_value", &Program::add_value, py::arg("name"))
      .def("value_count", &Program::value_count)
      .def(
          "set_constant",
          [](Program& p, int vid, py::object arr) {
            py::array a = as_contiguous(arr);
            // A read-only array is taken as immutable and borrowed (kept alive,
            // not copied); so is a copy as_contiguous just made. A writable
            // array the caller holds is copied: they may change it later.
            const bool readonly = !(a.flags() & py::detail::npy_api::NPY_ARRAY_WRITEABLE_);
            const bool ours = a.ptr() != arr.ptr() && (a.flags() & py::detail::npy_api::NPY_ARRAY_OWNDATA_);
            std::shared_ptr<void> owner = (readonly || ours) ? hold_pyobject(a) : nullptr;
            p.set_constant(vid, tensor_view(a, "set_constant"), std::move(owner));
          },
          py::arg("vid"), py::arg("array"),
          "Make value `vid` a constant. Read-only arrays are borrowed, writable ones copied.")
      .def("prepare", &Program::prepare, py::arg("release_packed_constants") = false,
           "Finalize now: kernels pack their constant weights. With release_packed_constants, "
           "originals that only packed copies read are freed and the Program is sealed. "
           "Returns the bytes freed.")
      .def("released_constants", &Program::released_constants,
           "Names of the constants freed by prepare(release_packed_constants=True).")
      .def(
          "add_native_step",
          [](Program& p, const std::string& op, const std::vector<int>& inputs, const std::vector<int>& outputs,
             py::object attrs, const std::string& label) {
            py::dict d = attrs.is_none() ? py::dict() : py::dict(attrs);
            p.add_native_step(op, inputs, outputs, attrs_from_dict(op, d), label);
          },
          py::arg("op"), py::arg("inputs"), py::arg("outputs"), py::arg("attrs") = py::none(),
          py::arg("label") = "")
      .def(
          "add_python_step",
          [](Program& p, py::function fn, const std::vector<int>& inputs, const std::vector<int>& outputs,
             const std::string& label) {
            p.add_host_step(std::make_unique<PyHostStep>(fn, label), inputs, outputs, label);
          },
          py::arg("fn"), py::arg("inputs"), py::arg("outputs"), py::arg("label") = "")
      .def("set_io", &Program::set_io, py::arg("inputs"), py::arg("outputs"))
      .def(
          "run",
          [](Program& p, py::sequence feeds) {
            std::vector<py::array> arrays;
            std::vector<Tensor> tensors;
            std::vector<std::shared_ptr<void>> owners;
            for (size_t i = 0; i < feeds.size(); ++i) {
              py::array a = as_contiguous(feeds[i]);
              tensors.push_back(tensor_view(a, "feed " + std::to_string(i)));
              owners.push_back(hold_pyobject(a));
              arrays.push_back(std::move(a));
            }
            std::vector<RunOutput> outs;
            {
              py::gil_scoped_release nogil;
              outs = p.run(tensors, owners);
              owners.clear();
            }
            py::list result;
            for (const auto& o : outs) result.append(to_numpy(o));
            return result;
          },
          py::arg("feeds"))
      .def("step_count", &Program::step_count)
      .def("native_step_count", &Program::native_step_count)
      .def("set_profiling", &Program::set_profiling, py::arg("enabled"))
      .def("reset_profile", &Program::reset_profile)
      .def("profile",
           [](const Program& p) {
             py::list r;
             for (const auto& e : p.profile()) r.append(py::make_tuple(e.label, e.op, e.seconds, e.calls));
             return r;
           })
      .def("plans",
           [](const Program& p) {
             py::list r;
             for (const auto& info : p.plans()) r.append(plan_to_dict(info));
             return r;
           })
      .def(
          "planned_arena_bytes",
          [](const Program& p, py::object feed_shapes) -> py::object {
            const auto plans = p.plans();
            const PlanInfo* best = nullptr;
            for (const auto& info : plans) {
              if (feed_shapes.is_none()) {
                if (!best || info.sequence > best->sequence) best = &info;
              } else if (py::cast<std::vector<Shape>>(feed_shapes) == info.feed_shapes) {
                best = &info;
              }
            }
            if (!best) return py::none();
            return py::int_(best->arena_bytes);
          },
          py::arg("feed_shapes") = py::none(),
          "Arena bytes of the plan for these feed shapes (default: the newest plan); None if not planned yet.");
}
