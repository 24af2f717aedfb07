// A small fork-join pool owned by one Program. The calling thread takes part
// in the work. Nested calls and calls made while another thread holds the
// pool run serially in the caller, so concurrent run()s never oversubscribe
// the cores and can never deadlock. While a run is in progress (an Active
// scope is open) idle workers poll for the next job, yielding the core to any
// other runnable thread; between runs they sleep (after INFOPT_SPIN_US, 0 by
// default), so an idle session never holds the cores. The owner notifies only
// when a worker sleeps.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace infopt {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);  // <= 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Runs fn(t) for every t in [0, ntasks), spread over the pool with dynamic
  // task claiming. Rethrows the first exception after all tasks finished.
  void run_tasks(int64_t ntasks, const std::function<void(int64_t)>& fn);

  // Splits [0, n) into at most size() * 4 chunks of at least `grain` items.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Threads a kernel may plan for right now (1 inside a pool task).
  int available() const;

  // Marks a run in progress for its lifetime: jobs then follow each other
  // within microseconds, and waking a sleeping worker (a futex round trip,
  // tens of microseconds on a VM) cost a large share of a 0.2 ms GEMM.
  class Active {
   public:
    explicit Active(ThreadPool& pool) : pool_(pool) { pool_.active_.fetch_add(1, std::memory_order_acq_rel); }
    ~Active() { pool_.active_.fetch_sub(1, std::memory_order_acq_rel); }
    Active(const Active&) = delete;
    Active& operator=(const Active&) = delete;

   private:
    ThreadPool& pool_;
  };

 private:
  struct Job {
    const std::function<void(int64_t)>* fn = nullptr;
    int64_t ntasks = 0;
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::atomic<int> users{0};  // workers currently holding a pointer to this job
    std::mutex error_mu;
    std::exception_ptr error;
  };

  void worker_loop();
  static void work_on(Job& job);

  int size_;
  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the thread that owns the current job

  std::mutex mu_;  // guards current_, generation_, stop_, sleepers_
  std::condition_variable wake_;
  Job* current_ = nullptr;
  uint64_t generation_ = 0;
  bool stop_ = false;
  int sleepers_ = 0;  // workers blocked on wake_ (the owner notifies only if any)
  // generation_ and stop_ as spinning workers read them without the lock
  std::atomic<uint64_t> published_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};  // open Active scopes
};

}  // namespace infopt
