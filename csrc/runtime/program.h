// A Program is a list of steps over numbered values, run many times.
// Native steps run C++ kernels; host steps call back into Python (see
// py_step.h). Plans (buffer shapes and arena offsets) are cached per
// signature of feed dtypes and shapes.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "kernels/kernel.h"
#include "runtime/tensor.h"
#include "runtime/thread_pool.h"

namespace infopt {

// A step implemented outside the native kernels (the Python fallback).
class HostStep {
 public:
  virtual ~HostStep() = default;
  // inputs[i] may be null (omitted); owners[i] keeps inputs[i]'s memory alive
  // if the callee wants to retain a view. Must fill one tensor and one owner
  // per output; the output memory must not alias any input.
  virtual void call(const std::vector<const Tensor*>& inputs, const std::vector<std::shared_ptr<void>>& owners,
                    std::vector<Tensor>& outputs, std::vector<std::shared_ptr<void>>& output_owners) = 0;
};

struct RunOutput {
  Tensor tensor;
  std::shared_ptr<AlignedBuffer> buffer;  // owns tensor.data; hand it to the caller
};

struct ProfileEntry {
  std::string label, op;
  double seconds;
  int64_t calls;
};

struct PlanInfo {
  std::vector<Shape> feed_shapes;
  size_t arena_bytes = 0;     // planned arena size (with reuse)
  size_t unshared_bytes = 0;  // sum of the same buffers without reuse
  int64_t arena_values = 0;   // values placed in the arena
  int64_t sequence = 0;       // creation order among this Program's plans
  // Concat inputs planned as slabs of their Concat's output buffer (written
  // there by their producers, so the Concat does not copy them).
  int64_t concat_inplace_inputs = 0;
};

class Program {
 public:
  explicit Program(int num_threads = 0, Isa isa = default_isa());
  ~Program();

  int add_value(const std::string& name);
  // With an owner, the constant borrows t.data (owner keeps it alive and
  // unchanged); without one, the data is copied.
  void set_constant(int vid, Tensor t, std::shared_ptr<void> owner = nullptr);
  void add_native_step(const std::string& op, const std::vector<int>& inputs, const std::vector<int>& outputs,
                       const Attrs& attrs, const std::string& label);
  void add_host_step(std::unique_ptr<HostStep> step, const std::vector<int>& inputs,
                     const std::vector<int>& outputs, const std::string& label);
  void set_io(const std::vector<int>& inputs, const std::vector<int>& outputs);

  // feeds[i] is read in place; feed_owners[i] (may be null) keeps it alive
  // for host steps that retain views. Thread-safe.
  std::vector<RunOutput> run(const std::vector<Tensor>& feeds, const std::vector<std::shared_ptr<void>>& feed_owners);

  // Finalizes now (kernels pre-pack their constant weights). With
  // release_packed_constants, a constant that every reader holds in a packed
  // copy (Kernel::reads_only_packed) is freed as soon as its last reader is
  // prepared; the Program is then sealed (any later change throws). Returns the
  // bytes freed. A Program already finalized (run before) stays as it is.
  size_t prepare(bool release_packed_constants);
  std::vector<std::string> released_constants() const;

  int64_t step_count() const { return static_cast<int64_t>(steps_.size()); }
  int64_t native_step_count() const;
  int64_t value_count() const { return static_cast<int64_t>(values_.size()); }
  int num_threads() const { return pool_.size(); }
  Isa isa() const { return isa_; }

  void set_profiling(bool on) { profiling_.store(on); }
  std::vector<ProfileEntry> profile() const;
  void reset_profile();
  std::vector<PlanInfo> plans() const;

 private:
  struct Value {
    std::string name;
    bool is_feed = false;
    bool is_const = false;
    bool released = false;          // freed after packing; const_tensor.data is then only an identity
    std::shared_ptr<void> const_owner;  // keeps const_tensor.data alive (own copy or borrowed)
    Tensor const_tensor;
  };
  struct Step;
  struct Plan;
  struct RunState;
  class NativeIO;

  void invalidate();
  size_t finalize_locked(bool release_packed_constants = false);
  void plan_inplace_locked();
  std::shared_ptr<const Plan> build_plan(const RunState& st, const std::vector<Tensor>& feeds) const;
  void execute(RunState& st) const;
  void run_host_step(const Step& s, RunState& st) const;

  Isa isa_;
  mutable ThreadPool pool_;
  std::vector<Value> values_;
  std::vector<std::unique_ptr<Step>> steps_;
  std::vector<int> inputs_, outputs_;
  bool io_set_ = false;

  // Derived once by finalize_locked().
  mutable std::mutex mu_;
  bool finalized_ = false;
  bool sealed_ = false;  // some constant was released into packed copies: no more changes
  std::vector<int> base_;       // value -> value that owns the buffer (views follow inputs)
  std::vector<int64_t> last_use_;  // base value -> last step index reading it (n = end of run)
  std::vector<int> producer_;   // value -> step index, -1 for feeds/constants
  std::vector<int64_t> overwrite_at_;  // base value -> first step writing over it in place (INT64_MAX: none)
  std::vector<bool> is_output_;
  std::map<std::vector<int64_t>, std::shared_ptr<const Plan>> plans_;
  std::atomic<bool> profiling_{false};
  mutable std::atomic<int64_t> plan_seq_{0};
};

}  // namespace infopt
