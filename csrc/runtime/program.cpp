#include "runtime/program.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "runtime/memory_planner.h"

namespace infopt {

struct Program::Step {
  bool native = true;
  std::string op, label;
  std::unique_ptr<Kernel> kernel;
  std::unique_ptr<HostStep> host;
  std::vector<int> inputs, outputs;
  int inplace = -1;  // input index whose buffer output 0 reuses (decided by finalize_locked)
  bool is_concat = false;    // op == "Concat": candidates for in-place concat planning
  int64_t concat_axis = 0;
  mutable std::atomic<int64_t> ns{0}, calls{0};
};

struct Program::Plan {
  // A Concat whose inputs were planned in place: its output takes its arena
  // slot only when the run matches the recorded layout, so that every input
  // already in the slot sits exactly where the Concat would copy it.
  struct ConcatLayout {
    Shape out_shape;
    std::vector<size_t> in_bytes;
  };
  std::vector<int64_t> offset;  // per value; -1 = not in the arena
  std::vector<size_t> bytes;    // planned bytes per value
  std::vector<char> exact;      // per value: a slab of a Concat output; placed only with exactly `bytes`
  std::vector<int> layout_of;   // per value: index into concat_layouts for a Concat output, or -1
  std::vector<ConcatLayout> concat_layouts;
  size_t arena_bytes = 0;
  PlanInfo info;
  mutable std::mutex pool_mu;
  mutable std::vector<std::shared_ptr<AlignedBuffer>> free_arenas;  // reused across runs
};

struct Program::RunState {
  const Plan* plan = nullptr;  // null: first run of a signature (records sizes)
  std::shared_ptr<AlignedBuffer> arena;
  std::vector<Tensor> vals;
  std::vector<std::shared_ptr<void>> owner;                // keeps a base value's memory alive
  std::vector<std::shared_ptr<AlignedBuffer>> out_buf;     // dedicated graph-output buffers
  std::vector<char> defined;
  std::vector<size_t> recorded_bytes;
};

namespace {

std::string step_prefix(const std::string& label, const std::string& op, const std::vector<const Tensor*>& in) {
  std::string s = "step '" + label + "' (" + op + ") with inputs (";
  for (size_t i = 0; i < in.size(); ++i) {
    if (i) s += ", ";
    s += in[i] ? in[i]->desc() : std::string("-");
  }
  return s + "): ";
}

}  // namespace

// StepIO for native steps: decides where each output lives.
class Program::NativeIO : public StepIO {
 public:
  NativeIO(const Program& p, const Step& s, RunState& st) : p_(p), s_(s), st_(st) {
    inputs_.reserve(s.inputs.size());
    for (int u : s.inputs) inputs_.push_back(u >= 0 ? &st.vals[static_cast<size_t>(u)] : nullptr);
    num_outputs_ = static_cast<int>(s.outputs.size());
    pool_ = &p.pool_;
    isa_ = p.isa_;
  }

  const std::vector<const Tensor*>& inputs() const { return inputs_; }

  // Whether value uv, about to be written with `bytes` / `shape`, may take its
  // planned arena slot.
  bool fits_plan(size_t uv, size_t bytes, const Shape& shape) const {
    const Plan& pl = *st_.plan;
    if (pl.exact[uv] ? bytes != pl.bytes[uv] : bytes > pl.bytes[uv]) return false;
    const int li = pl.layout_of[uv];
    if (li < 0) return true;
    const Plan::ConcatLayout& lay = pl.concat_layouts[static_cast<size_t>(li)];
    if (shape != lay.out_shape || inputs_.size() != lay.in_bytes.size()) return false;
    for (size_t k = 0; k < inputs_.size(); ++k) {
      if (!inputs_[k] || inputs_[k]->nbytes() != lay.in_bytes[k]) return false;
    }
    return true;
  }

  bool has_output(int i) const override { return i >= 0 && i < num_outputs_ && s_.outputs[static_cast<size_t>(i)] >= 0; }

  Tensor& output(int i, DType dtype, const Shape& shape) override {
    if (i < 0 || i >= num_outputs_) throw std::logic_error("kernel asked for output " + std::to_string(i) + " out of range");
    const int v = s_.outputs[static_cast<size_t>(i)];
    for (int64_t d : shape) {
      if (d < 0) throw std::invalid_argument("negative dimension in output shape " + shape_str(shape));
    }
    const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
    if (v < 0) {  // omitted optional output: scratch that dies with the step
      scratch_.push_back(std::make_unique<AlignedBuffer>(bytes));
      scratch_tensors_.push_back(std::make_unique<Tensor>(Tensor{dtype, shape, scratch_.back()->data()}));
      return *scratch_tensors_.back();
    }
    const size_t uv = static_cast<size_t>(v);
    Tensor& t = st_.vals[uv];
    const Tensor* reuse = (i == 0 && s_.inplace >= 0) ? input(s_.inplace) : nullptr;
    t.dtype = dtype;
    t.shape = shape;
    if (reuse && reuse->nbytes() == bytes) {
      // The input dies here: write over it (its base's lifetime covers this value).
      t.data = reuse->data;
    } else if (reuse) {
      // Size differs from the plan's assumption: a private buffer for this run.
      auto b = std::make_shared<AlignedBuffer>(bytes);
      t.data = b->data();
      st_.owner[uv] = b;
    } else if (p_.is_output_[uv]) {
      auto b = std::make_shared<AlignedBuffer>(bytes);
      t.data = b->data();
      st_.out_buf[uv] = b;
    } else if (st_.plan && st_.plan->offset[uv] >= 0 && fits_plan(uv, bytes, shape)) {
      t.data = static_cast<char*>(st_.arena->data()) + st_.plan->offset[uv];
      st_.owner[uv] = st_.arena;
    } else {
      // First run of a signature, or a shape the plan did not foresee.
      auto b = std::make_shared<AlignedBuffer>(bytes);
      t.data = b->data();
      st_.owner[uv] = b;
    }
    if (!st_.plan) st_.recorded_bytes[uv] = bytes;
    st_.defined[uv] = 1;
    return t;
  }

  void alias_output(int i, int in, const Shape& shape) override {
    const int v = s_.outputs[static_cast<size_t>(i)];
    if (v < 0) return;
    const Tensor* src = input(in);
    if (!src) throw std::logic_error("view of an omitted input");
    if (shape_numel(shape) != src->numel()) {
      throw std::invalid_argument("cannot view " + src->desc() + " as " + shape_str(shape));
    }
    Tensor& t = st_.vals[static_cast<size_t>(v)];
    t = Tensor{src->dtype, shape, src->data};
    st_.defined[static_cast<size_t>(v)] = 1;
  }

 private:
  const Program& p_;
  const Step& s_;
  RunState& st_;
  std::vector<std::unique_ptr<AlignedBuffer>> scratch_;
  std::vector<std::unique_ptr<Tensor>> scratch_tensors_;
};

Program::Program(int num_threads, Isa isa) : isa_(isa), pool_(num_threads) {
  if (!isa_supported(isa)) throw std::invalid_argument(std::string("ISA ") + isa_name(isa) + " not supported here");
}

Program::~Program() = default;

void Program::invalidate() {
  std::lock_guard<std::mutex> lk(mu_);
  // Re-preparing kernels would read constants whose memory has been freed.
  if (sealed_) throw std::logic_error("Program cannot be changed after prepare() released its packed constants");
  finalized_ = false;
  plans_.clear();
}

int Program::add_value(const std::string& name) {
  invalidate();
  values_.push_back(Value{});
  values_.back().name = name;
  return static_cast<int>(values_.size() - 1);
}

static void check_vid(int vid, size_t n, bool allow_missing, const char* what) {
  if ((allow_missing && vid == -1)) return;
  if (vid < 0 || static_cast<size_t>(vid) >= n) {
    throw std::invalid_argument(std::string(what) + ": value id " + std::to_string(vid) + " out of range (have " +
                                std::to_string(n) + " values)");
  }
}

void Program::set_constant(int vid, Tensor t, std::shared_ptr<void> owner) {
  check_vid(vid, values_.size(), false, "set_constant");
  invalidate();
  Value& v = values_[static_cast<size_t>(vid)];
  if (!owner) {
    auto buf = std::make_shared<AlignedBuffer>(t.nbytes());
    if (t.nbytes()) std::memcpy(buf->data(), t.data, t.nbytes());
    t.data = buf->data();
    owner = std::move(buf);
  }
  v.is_const = true;
  v.released = false;
  v.const_owner = std::move(owner);
  v.const_tensor = t;
}

void Program::add_native_step(const std::string& op, const std::vector<int>& inputs, const std::vector<int>& outputs,
                              const Attrs& attrs, const std::string& label) {
  for (int u : inputs) check_vid(u, values_.size(), true, op.c_str());
  for (int u : outputs) check_vid(u, values_.size(), true, op.c_str());
  auto kernel = make_kernel(op, attrs, static_cast<int>(inputs.size()), static_cast<int>(outputs.size()));
  for (size_t j = 0; j < outputs.size(); ++j) {
    const int in = kernel->view_of(static_cast<int>(j));
    if (outputs[j] >= 0 && in >= 0 && (static_cast<size_t>(in) >= inputs.size() || inputs[static_cast<size_t>(in)] < 0)) {
      throw std::invalid_argument(op + ": view output " + std::to_string(j) + " needs input " + std::to_string(in));
    }
  }
  invalidate();
  auto s = std::make_unique<Step>();
  s->native = true;
  s->op = op;
  if (op == "Concat") {
    s->is_concat = true;
    s->concat_axis = attrs.get_int("axis", 0);
  }
  s->label = label.empty() ? op + "_" + std::to_string(steps_.size()) : label;
  s->kernel = std::move(kernel);
  s->inputs = inputs;
  s->outputs = outputs;
  steps_.push_back(std::move(s));
}

void Program::add_host_step(std::unique_ptr<HostStep> step, const std::vector<int>& inputs,
                            const std::vector<int>& outputs, const std::string& label) {
  for (int u : inputs) check_vid(u, values_.size(), true, "python step");
  for (int u : outputs) check_vid(u, values_.size(), true, "python step");
  invalidate();
  auto s = std::make_unique<Step>();
  s->native = false;
  s->op = "python";
  s->label = label.empty() ? "python_" + std::to_string(steps_.size()) : label;
  s->host = std::move(step);
  s->inputs = inputs;
  s->outputs = outputs;
  steps_.push_back(std::move(s));
}

void Program::set_io(const std::vector<int>& inputs, const std::vector<int>& outputs) {
  for (int u : inputs) check_vid(u, values_.size(), false, "set_io inputs");
  for (int u : outputs) check_vid(u, values_.size(), false, "set_io outputs");
  invalidate();
  for (auto& v : values_) v.is_feed = false;
  for (int u : inputs) {
    Value& v = values_[static_cast<size_t>(u)];
    if (v.is_const) throw std::invalid_argument("set_io: input '" + v.name + "' is a constant");
    if (v.is_feed) throw std::invalid_argument("set_io: input '" + v.name + "' listed twice");
    v.is_feed = true;
  }
  inputs_ = inputs;
  outputs_ = outputs;
  io_set_ = true;
}

int64_t Program::native_step_count() const {
  int64_t n = 0;
  for (const auto& s : steps_) n += s->native;
  return n;
}

size_t Program::finalize_locked(bool release_packed_constants) {
  if (!io_set_) throw std::invalid_argument("Program.run: set_io() was not called");
  const size_t n = values_.size();
  const int64_t S = static_cast<int64_t>(steps_.size());
  producer_.assign(n, -1);
  base_.resize(n);
  for (size_t v = 0; v < n; ++v) base_[v] = static_cast<int>(v);
  std::vector<char> defined(n, 0);
  for (size_t v = 0; v < n; ++v) defined[v] = values_[v].is_feed || values_[v].is_const;
  for (int64_t i = 0; i < S; ++i) {
    const Step& s = *steps_[static_cast<size_t>(i)];
    for (int u : s.inputs) {
      if (u >= 0 && !defined[static_cast<size_t>(u)]) {
        throw std::invalid_argument("step '" + s.label + "' (" + s.op + ") reads value '" +
                                    values_[static_cast<size_t>(u)].name +
                                    "' which is not a feed, a constant or the output of an earlier step");
      }
    }
    for (size_t j = 0; j < s.outputs.size(); ++j) {
      const int v = s.outputs[j];
      if (v < 0) continue;
      if (defined[static_cast<size_t>(v)]) {
        throw std::invalid_argument("step '" + s.label + "' (" + s.op + ") writes value '" +
                                    values_[static_cast<size_t>(v)].name + "' which is already defined");
      }
      defined[static_cast<size_t>(v)] = 1;
      producer_[static_cast<size_t>(v)] = static_cast<int>(i);
      if (s.native) {
        const int in = s.kernel->view_of(static_cast<int>(j));
        if (in >= 0) base_[static_cast<size_t>(v)] = base_[static_cast<size_t>(s.inputs[static_cast<size_t>(in)])];
      }
    }
  }
  for (int v : outputs_) {
    if (!defined[static_cast<size_t>(v)]) {
      throw std::invalid_argument("graph output '" + values_[static_cast<size_t>(v)].name + "' is never produced");
    }
  }
  last_use_.assign(n, -1);
  for (int64_t i = 0; i < S; ++i) {
    for (int u : steps_[static_cast<size_t>(i)]->inputs) {
      if (u < 0) continue;
      int64_t& lu = last_use_[static_cast<size_t>(base_[static_cast<size_t>(u)])];
      lu = std::max(lu, i);
    }
  }
  is_output_.assign(n, false);
  for (int v : outputs_) {
    last_use_[static_cast<size_t>(base_[static_cast<size_t>(v)])] = S;
    const int p = producer_[static_cast<size_t>(v)];
    if (p >= 0 && steps_[static_cast<size_t>(p)]->native && base_[static_cast<size_t>(v)] == v) {
      is_output_[static_cast<size_t>(v)] = true;
    }
  }
  plan_inplace_locked();
  // A constant may be freed once packed when every reader is a native step
  // that reads it directly (not through a view) and only from its packed copy,
  // and it is not a graph output. pending counts readers not yet prepared, so
  // each original goes as soon as its last reader has packed it.
  std::vector<int64_t> pending(n, 0);
  std::vector<char> keep(n, 0);
  if (release_packed_constants) {
    for (int v : outputs_) keep[static_cast<size_t>(base_[static_cast<size_t>(v)])] = 1;
    for (const auto& sp : steps_) {
      for (int u : sp->inputs) {
        if (u < 0) continue;
        const size_t b = static_cast<size_t>(base_[static_cast<size_t>(u)]);
        if (!values_[b].is_const) continue;
        if (!sp->native || static_cast<size_t>(u) != b) keep[b] = 1;
        else ++pending[b];
      }
    }
  }
  size_t freed = 0;
  for (auto& sp : steps_) {
    if (!sp->native) continue;
    std::vector<const Tensor*> consts;
    for (int u : sp->inputs) {
      const bool c = u >= 0 && values_[static_cast<size_t>(u)].is_const;
      consts.push_back(c ? &values_[static_cast<size_t>(u)].const_tensor : nullptr);
    }
    sp->kernel->prepare(consts, isa_);
    if (!release_packed_constants) continue;
    for (size_t k = 0; k < sp->inputs.size(); ++k) {
      const int u = sp->inputs[k];
      if (u < 0 || !values_[static_cast<size_t>(u)].is_const || base_[static_cast<size_t>(u)] != u) continue;
      Value& cv = values_[static_cast<size_t>(u)];
      if (!sp->kernel->reads_only_packed(static_cast<int>(k))) keep[static_cast<size_t>(u)] = 1;
      if (--pending[static_cast<size_t>(u)] == 0 && !keep[static_cast<size_t>(u)] && !cv.released) {
        freed += cv.const_tensor.nbytes();
        cv.const_owner.reset();
        cv.released = true;
        sealed_ = true;
      }
    }
  }
  finalized_ = true;
  return freed;
}

size_t Program::prepare(bool release_packed_constants) {
  std::lock_guard<std::mutex> lk(mu_);
  // Already finalized (by a run): kernels may be running, so they are not
  // prepared again and nothing is released.
  if (finalized_) return 0;
  if (sealed_) throw std::logic_error("Program.prepare: an earlier prepare() failed after releasing constants");
  return finalize_locked(release_packed_constants);
}

std::vector<std::string> Program::released_constants() const {
  std::vector<std::string> r;
  for (const auto& v : values_) {
    if (v.released) r.push_back(v.name);
  }
  return r;
}

// In-place reuse: output 0 of a step takes over an input's buffer when that
// input's base was produced by a native step (so it lives in the arena or a
// run-owned heap block), dies at this step and is not a graph output. The
// output then joins the input's base, which extends the base's lifetime.
void Program::plan_inplace_locked() {
  const int64_t S = static_cast<int64_t>(steps_.size());
  const size_t n = values_.size();
  overwrite_at_.assign(n, INT64_MAX);
  for (int64_t i = 0; i < S; ++i) {
    Step& s = *steps_[static_cast<size_t>(i)];
    s.inplace = -1;
    if (!s.native || s.outputs.empty() || s.outputs[0] < 0) continue;
    const size_t v = static_cast<size_t>(s.outputs[0]);
    if (is_output_[v] || base_[v] != static_cast<int>(v)) continue;
    for (int c : s.kernel->inplace_inputs()) {
      if (c < 0 || static_cast<size_t>(c) >= s.inputs.size() || s.inputs[static_cast<size_t>(c)] < 0) continue;
      const size_t b = static_cast<size_t>(base_[static_cast<size_t>(s.inputs[static_cast<size_t>(c)])]);
      const int p = producer_[b];
      if (p < 0 || !steps_[static_cast<size_t>(p)]->native || last_use_[b] != i) continue;
      bool read_twice_elsewhere = false;  // another input of this step on the same base but not this slot
      for (size_t k = 0; k < s.inputs.size(); ++k) {
        const int u = s.inputs[k];
        if (static_cast<int>(k) != c && u >= 0 && static_cast<size_t>(base_[static_cast<size_t>(u)]) == b &&
            u != s.inputs[static_cast<size_t>(c)]) {
          read_twice_elsewhere = true;
        }
      }
      if (read_twice_elsewhere) continue;
      s.inplace = c;
      overwrite_at_[b] = std::min<int64_t>(overwrite_at_[b], i);
      for (size_t w = 0; w < n; ++w) {
        if (base_[w] == static_cast<int>(v)) base_[w] = static_cast<int>(b);
      }
      last_use_[b] = std::max<int64_t>(i, last_use_[v]);  // a dead output still writes at step i
      break;
    }
  }
}

// In-place concat: a Concat output whose dims before the axis are all 1 holds
// each input as one contiguous slab. An input produced by a native step into a
// buffer of its own (not a feed, constant, view, in-place reuse, graph output
// or Python result) can then be written by its producer straight into its slab:
// it takes no arena slot of its own, and the Concat output's slot lives from
// the first such producer until the last reader of any of them. A Concat output
// may itself be such a slab of a later Concat (DenseNet's chains), so the slabs
// form trees whose root holds the one arena slot. Refused: an input read twice
// by the Concat, already a slab of another Concat, written over in place later,
// at an offset that is not 64-byte aligned, or read at or after a step that
// writes over the Concat output in place.
std::shared_ptr<const Program::Plan> Program::build_plan(const RunState& st, const std::vector<Tensor>& feeds) const {
  auto plan = std::make_shared<Plan>();
  const size_t n = values_.size();
  const int64_t S = static_cast<int64_t>(steps_.size());
  plan->offset.assign(n, -1);
  plan->bytes.assign(n, 0);
  plan->exact.assign(n, 0);
  plan->layout_of.assign(n, -1);
  auto own_buffer = [&](size_t v) {
    const int p = producer_[v];
    return p >= 0 && steps_[static_cast<size_t>(p)]->native && base_[v] == static_cast<int>(v) && !is_output_[v] &&
           st.defined[v] && st.recorded_bytes[v] != 0;
  };
  std::vector<int> parent(n, -1);      // Concat output holding v as a slab
  std::vector<size_t> rel(n, 0);       // byte offset of v's slab in parent
  std::vector<int64_t> first(n, 0), last(n, 0);  // live interval of v and its slabs
  for (size_t v = 0; v < n; ++v) {
    first[v] = producer_[v];
    last[v] = std::max<int64_t>(producer_[v], last_use_[v]);
  }
  for (int64_t i = 0; i < S; ++i) {
    const Step& s = *steps_[static_cast<size_t>(i)];
    if (!s.native || !s.is_concat || s.outputs.size() != 1 || s.outputs[0] < 0) continue;
    const size_t c = static_cast<size_t>(s.outputs[0]);
    if (!own_buffer(c)) continue;
    const Tensor& y = st.vals[c];
    const int64_t r = y.ndim();
    const int64_t axis = s.concat_axis < 0 ? s.concat_axis + r : s.concat_axis;
    if (axis < 0 || axis >= r) continue;
    bool ok = y.nbytes() == st.recorded_bytes[c];
    for (int64_t d = 0; ok && d < axis; ++d) ok = y.shape[static_cast<size_t>(d)] == 1;
    size_t total = 0;
    for (int u : s.inputs) {
      if (!ok) break;
      if (u < 0 || !st.defined[static_cast<size_t>(u)]) ok = false;
      else {
        const Tensor& t = st.vals[static_cast<size_t>(u)];
        ok = t.dtype == y.dtype && t.ndim() == r;
        total += t.nbytes();
      }
    }
    if (!ok || total != y.nbytes()) continue;
    Plan::ConcatLayout lay;
    lay.out_shape = y.shape;
    size_t off = 0;
    int64_t placed = 0;
    for (int u : s.inputs) {
      const size_t uu = static_cast<size_t>(u);
      const size_t b = st.vals[uu].nbytes();
      lay.in_bytes.push_back(b);
      const bool once = std::count(s.inputs.begin(), s.inputs.end(), u) == 1;
      if (once && uu != c && own_buffer(uu) && parent[uu] < 0 && st.recorded_bytes[uu] == b && off % kAlignment == 0 &&
          overwrite_at_[uu] == INT64_MAX && last[uu] < overwrite_at_[c]) {
        parent[uu] = static_cast<int>(c);
        rel[uu] = off;
        first[c] = std::min(first[c], first[uu]);
        last[c] = std::max(last[c], last[uu]);
        ++placed;
      }
      off += b;
    }
    if (placed) {
      plan->layout_of[c] = static_cast<int>(plan->concat_layouts.size());
      plan->concat_layouts.push_back(std::move(lay));
      plan->info.concat_inplace_inputs += placed;
    }
  }
  std::vector<BufferRequest> reqs;
  std::vector<size_t> req_value;
  for (size_t v = 0; v < n; ++v) {
    if (!own_buffer(v)) continue;
    plan->info.unshared_bytes += align_up(st.recorded_bytes[v]);
    if (parent[v] >= 0) continue;
    BufferRequest r;
    r.first = first[v];
    r.last = last[v];
    r.bytes = st.recorded_bytes[v];
    reqs.push_back(r);
    req_value.push_back(v);
  }
  ArenaLayout layout = plan_arena(reqs);
  for (size_t k = 0; k < reqs.size(); ++k) {
    plan->offset[req_value[k]] = static_cast<int64_t>(layout.offsets[k]);
    plan->bytes[req_value[k]] = reqs[k].bytes;
  }
  int64_t placed_values = static_cast<int64_t>(reqs.size());
  for (size_t v = 0; v < n; ++v) {
    if (parent[v] < 0) continue;
    size_t off = 0, w = v;
    while (parent[w] >= 0) {
      off += rel[w];
      w = static_cast<size_t>(parent[w]);
    }
    plan->offset[v] = plan->offset[w] + static_cast<int64_t>(off);
    plan->bytes[v] = st.recorded_bytes[v];
    plan->exact[v] = 1;
    ++placed_values;
  }
  plan->arena_bytes = layout.total_bytes;
  plan->info.arena_bytes = layout.total_bytes;
  plan->info.arena_values = placed_values;
  plan->info.sequence = ++plan_seq_;
  for (const Tensor& f : feeds) plan->info.feed_shapes.push_back(f.shape);
  return plan;
}

void Program::run_host_step(const Step& s, RunState& st) const {
  std::vector<const Tensor*> in;
  std::vector<std::shared_ptr<void>> owners;
  for (int u : s.inputs) {
    if (u < 0) {
      in.push_back(nullptr);
      owners.push_back(nullptr);
      continue;
    }
    const size_t uu = static_cast<size_t>(u);
    in.push_back(&st.vals[uu]);
    const size_t b = static_cast<size_t>(base_[uu]);
    std::shared_ptr<void> o = st.owner[b];
    if (!o && st.out_buf[b]) o = st.out_buf[b];
    owners.push_back(o);
  }
  std::vector<Tensor> outs;
  std::vector<std::shared_ptr<void>> out_owners;
  s.host->call(in, owners, outs, out_owners);
  if (outs.size() != s.outputs.size() || out_owners.size() != s.outputs.size()) {
    throw std::runtime_error("python step '" + s.label + "' produced " + std::to_string(outs.size()) +
                             " outputs, expected " + std::to_string(s.outputs.size()));
  }
  for (size_t j = 0; j < outs.size(); ++j) {
    const int v = s.outputs[j];
    if (v < 0) continue;
    st.vals[static_cast<size_t>(v)] = outs[j];
    st.owner[static_cast<size_t>(v)] = out_owners[j];
    st.defined[static_cast<size_t>(v)] = 1;
  }
}

void Program::execute(RunState& st) const {
  const bool prof = profiling_.load(std::memory_order_relaxed);
  const int64_t S = static_cast<int64_t>(steps_.size());
  for (int64_t i = 0; i < S; ++i) {
    const Step& s = *steps_[static_cast<size_t>(i)];
    const auto t0 = prof ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    if (s.native) {
      NativeIO io(*this, s, st);
      try {
        s.kernel->run(io);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(step_prefix(s.label, s.op, io.inputs()) + e.what());
      } catch (const std::bad_alloc&) {
        throw;
      } catch (const std::exception& e) {
        throw std::runtime_error(step_prefix(s.label, s.op, io.inputs()) + e.what());
      }
      for (size_t j = 0; j < s.outputs.size(); ++j) {
        const int v = s.outputs[j];
        if (v >= 0 && !st.defined[static_cast<size_t>(v)]) {
          throw std::runtime_error(step_prefix(s.label, s.op, io.inputs()) + "kernel did not produce output " +
                                   std::to_string(j));
        }
      }
    } else {
      run_host_step(s, st);
    }
    if (prof) {
      const auto dt = std::chrono::steady_clock::now() - t0;
      s.ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(dt).count(), std::memory_order_relaxed);
      s.calls.fetch_add(1, std::memory_order_relaxed);
    }
    // Release heap buffers (first run, unplanned shapes, Python results) early.
    for (int u : s.inputs) {
      if (u < 0) continue;
      const size_t b = static_cast<size_t>(base_[static_cast<size_t>(u)]);
      if (last_use_[b] == i) st.owner[b].reset();
    }
  }
}

std::vector<RunOutput> Program::run(const std::vector<Tensor>& feeds, const std::vector<std::shared_ptr<void>>& feed_owners) {
  std::shared_ptr<const Plan> plan;
  std::vector<int64_t> sig;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!finalized_) {
      // sealed but not finalized: prepare() threw after freeing some originals
      if (sealed_) throw std::logic_error("Program.run: prepare() failed after releasing constants; build the Program again");
      finalize_locked();
    }
    if (feeds.size() != inputs_.size()) {
      throw std::invalid_argument("Program.run: expected " + std::to_string(inputs_.size()) + " feeds, got " +
                                  std::to_string(feeds.size()));
    }
    for (const Tensor& f : feeds) {
      sig.push_back(static_cast<int64_t>(f.dtype));
      sig.push_back(f.ndim());
      sig.insert(sig.end(), f.shape.begin(), f.shape.end());
    }
    auto it = plans_.find(sig);
    if (it != plans_.end()) plan = it->second;
  }
  const size_t n = values_.size();
  RunState st;
  st.plan = plan.get();
  st.vals.resize(n);
  st.owner.resize(n);
  st.out_buf.resize(n);
  st.defined.assign(n, 0);
  if (!plan) st.recorded_bytes.assign(n, 0);
  for (size_t v = 0; v < n; ++v) {
    if (values_[v].is_const) {
      st.vals[v] = values_[v].const_tensor;
      st.owner[v] = values_[v].const_owner;  // null once released (only packed readers remain)
      st.defined[v] = 1;
    }
  }
  for (size_t k = 0; k < feeds.size(); ++k) {
    const size_t v = static_cast<size_t>(inputs_[k]);
    if (dtype_size(feeds[k].dtype) == 0) throw std::invalid_argument("Program.run: feed " + std::to_string(k) + " has an unsupported dtype");
    st.vals[v] = feeds[k];
    st.owner[v] = k < feed_owners.size() ? feed_owners[k] : nullptr;
    st.defined[v] = 1;
  }
  if (plan && plan->arena_bytes) {
    std::lock_guard<std::mutex> lk(plan->pool_mu);
    if (!plan->free_arenas.empty()) {
      st.arena = std::move(plan->free_arenas.back());
      plan->free_arenas.pop_back();
    }
  }
  if (plan && plan->arena_bytes && !st.arena) st.arena = std::make_shared<AlignedBuffer>(plan->arena_bytes);

  {
    ThreadPool::Active active(pool_);
    execute(st);
  }

  std::vector<RunOutput> result;
  std::vector<char> handed(n, 0);
  for (int vi : outputs_) {
    const size_t v = static_cast<size_t>(vi);
    RunOutput o;
    o.tensor = st.vals[v];
    if (st.out_buf[v] && !handed[v]) {
      o.buffer = st.out_buf[v];
      handed[v] = 1;
    } else {
      // Views, feeds, constants, Python results and repeated outputs: copy, so
      // the caller never aliases the arena, a feed or a constant.
      o.buffer = std::make_shared<AlignedBuffer>(o.tensor.nbytes());
      if (o.tensor.nbytes()) std::memcpy(o.buffer->data(), o.tensor.data, o.tensor.nbytes());
      o.tensor.data = o.buffer->data();
    }
    result.push_back(std::move(o));
  }
  if (!plan) {
    auto built = build_plan(st, feeds);
    std::lock_guard<std::mutex> lk(mu_);
    if (finalized_) plans_.emplace(sig, std::move(built));
  }
  std::fill(st.owner.begin(), st.owner.end(), nullptr);
  if (plan && st.arena && st.arena.use_count() == 1) {
    std::lock_guard<std::mutex> lk(plan->pool_mu);
    if (plan->free_arenas.size() < 4) plan->free_arenas.push_back(std::move(st.arena));
  }
  return result;
}

std::vector<ProfileEntry> Program::profile() const {
  std::vector<ProfileEntry> r;
  for (const auto& s : steps_) {
    r.push_back(ProfileEntry{s->label, s->op, static_cast<double>(s->ns.load()) * 1e-9, s->calls.load()});
  }
  return r;
}

void Program::reset_profile() {
  for (auto& s : steps_) {
    s->ns.store(0);
    s->calls.store(0);
  }
}

std::vector<PlanInfo> Program::plans() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<PlanInfo> r;
  for (const auto& kv : plans_) r.push_back(kv.second->info);
  return r;
}

}  // namespace infopt
