#include "runtime/py_interop.h"

#include <stdexcept>

namespace py = pybind11;

namespace infopt {

DType dtype_from_numpy(const py::dtype& dt, const std::string& what) {
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  const char order = dt.byteorder();
  if (order == '>') throw std::invalid_argument(what + ": big-endian arrays are not supported");
  switch (kind) {
    case 'f':
      if (size == 4) return DType::Float32;
      if (size == 8) return DType::Float64;
      if (size == 2) return DType::Float16;
      break;
    case 'i':
      if (size == 8) return DType::Int64;
      if (size == 4) return DType::Int32;
      if (size == 2) return DType::Int16;
      if (size == 1) return DType::Int8;
      break;
    case 'u':
      if (size == 8) return DType::UInt64;
      if (size == 4) return DType::UInt32;
      if (size == 2) return DType::UInt16;
      if (size == 1) return DType::UInt8;
      break;
    case 'b':
      return DType::Bool;
    default:
      break;
  }
  throw std::invalid_argument(what + ": unsupported dtype " + std::string(py::str(dt)));
}

py::dtype dtype_to_numpy(DType dt) {
  switch (dt) {
    case DType::Float32: return py::dtype("float32");
    case DType::Float64: return py::dtype("float64");
    case DType::Float16: return py::dtype("float16");
    case DType::Int64: return py::dtype("int64");
    case DType::Int32: return py::dtype("int32");
    case DType::Int16: return py::dtype("int16");
    case DType::Int8: return py::dtype("int8");
    case DType::UInt64: return py::dtype("uint64");
    case DType::UInt32: return py::dtype("uint32");
    case DType::UInt16: return py::dtype("uint16");
    case DType::UInt8: return py::dtype("uint8");
    case DType::Bool: return py::dtype("bool");
    case DType::Undefined: break;
  }
  throw std::invalid_argument("no numpy dtype for undefined tensor type");
}

py::array as_contiguous(const py::handle& obj) {
  // np.ascontiguousarray would turn 0-d arrays into 1-d ones.
  py::module_ np = py::module_::import("numpy");
  py::array a = np.attr("asarray")(obj);
  if (!(a.flags() & py::array::c_style)) a = np.attr("array")(a, py::arg("copy") = true, py::arg("order") = "C");
  return a;
}

Tensor tensor_view(const py::array& a, const std::string& what) {
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(what + ": array is not C-contiguous");
  Tensor t;
  t.dtype = dtype_from_numpy(a.dtype(), what);
  t.shape.assign(a.shape(), a.shape() + a.ndim());
  t.data = const_cast<void*>(a.data());
  return t;
}

namespace {
struct PyHolder {
  py::object obj;
  ~PyHolder() {
    py::gil_scoped_acquire gil;
    obj = py::object();
  }
};
}  // namespace

std::shared_ptr<void> hold_pyobject(py::object obj) {
  auto h = std::make_shared<PyHolder>();
  h->obj = std::move(obj);
  return h;
}

py::array to_numpy(const RunOutput& out) {
  auto* keep = new std::shared_ptr<AlignedBuffer>(out.buffer);
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<AlignedBuffer>*>(p); });
  return py::array(dtype_to_numpy(out.tensor.dtype), out.tensor.shape, {}, out.tensor.data, base);
}

py::array readonly_view(const Tensor& t, const std::shared_ptr<void>& owner) {
  auto* keep = new std::shared_ptr<void>(owner);
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  py::array a(dtype_to_numpy(t.dtype), t.shape, {}, t.data, base);
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return a;
}

PyHostStep::~PyHostStep() {
  // Programs may be destroyed from a thread without the GIL.
  if (Py_IsInitialized()) {
    py::gil_scoped_acquire gil;
    fn_ = py::function();
  } else {
    fn_.release();
  }
}

void PyHostStep::call(const std::vector<const Tensor*>& inputs, const std::vector<std::shared_ptr<void>>& owners,
                      std::vector<Tensor>& outputs, std::vector<std::shared_ptr<void>>& output_owners) {
  py::gil_scoped_acquire gil;
  py::list args;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i]) {
      args.append(readonly_view(*inputs[i], owners[i]));
    } else {
      args.append(py::none());
    }
  }
  py::object res = fn_(args);
  if (!py::isinstance<py::list>(res) && !py::isinstance<py::tuple>(res)) {
    throw std::runtime_error("python step '" + label_ + "' must return a list of arrays, got " +
                             std::string(py::str(py::type::handle_of(res))));
  }
  py::sequence seq = res;
  for (py::handle item : seq) {
    py::array a = as_contiguous(item);
    const bool owns = (a.flags() & py::detail::npy_api::NPY_ARRAY_OWNDATA_) && a.base().is_none();
    if (!owns) {
      // A copy guarantees the value neither aliases our buffers nor changes
      // if the callee mutates what it returned later.
      a = py::array(a.attr("copy")());
    }
    Tensor t = tensor_view(a, "python step '" + label_ + "' output " + std::to_string(outputs.size()));
    outputs.push_back(t);
    output_owners.push_back(hold_pyobject(a));
  }
}

}  // namespace infopt
