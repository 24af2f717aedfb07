#include "runtime/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace infopt {
namespace {
thread_local bool t_inside_pool = false;

// How long an idle worker polls for the next job before it sleeps (INFOPT_SPIN_US).
// Default 0: measured on the 2-core machine (bench/cpu_models.py, alternating blocks), a
// 200 us poll made SqueezeNet 12.6 -> 19.8 ms and MiniLM 1x128 34 -> 50 ms while onnxruntime
// ran in the same process; it helps only when one session owns the cores.
std::chrono::microseconds spin_time() {
  static const std::chrono::microseconds t = [] {
    const char* env = std::getenv("INFOPT_SPIN_US");
    long us = env ? std::strtol(env, nullptr, 10) : 0;
    return std::chrono::microseconds(std::clamp(us, 0L, 100000L));
  }();
  return t;
}

// Longest poll inside an active run without a job.
constexpr std::chrono::milliseconds kActivePoll{5};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  size_ = num_threads;
  for (int i = 1; i < size_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    stopping_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

int ThreadPool::available() const { return t_inside_pool ? 1 : size_; }

void ThreadPool::work_on(Job& job) {
  const bool was_inside = t_inside_pool;
  t_inside_pool = true;
  for (;;) {
    int64_t t = job.next.fetch_add(1, std::memory_order_relaxed);
    if (t >= job.ntasks) break;
    try {
      (*job.fn)(t);
    } catch (...) {
      std::lock_guard<std::mutex> lk(job.error_mu);
      if (!job.error) job.error = std::current_exception();
    }
    job.done.fetch_add(1, std::memory_order_acq_rel);
  }
  t_inside_pool = was_inside;
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    // Poll first: while a run is active (up to kActivePoll after the last job: a long serial
    // step should not keep a core busy), else for spin_time(). The clock is read and the core
    // offered to other runnable threads only every 64 pauses.
    bool ready = false;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 1; !ready; ++i) {
      ready = published_.load(std::memory_order_acquire) != seen || stopping_.load(std::memory_order_acquire);
      if (!ready && i % 64 == 0) {
        const auto idle = std::chrono::steady_clock::now() - start;
        if (active_.load(std::memory_order_relaxed) > 0 ? idle > kActivePoll : idle > spin_time()) break;
        std::this_thread::yield();
      }
      cpu_relax();
    }
    Job* job = nullptr;
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (!ready) {
        ++sleepers_;
        wake_.wait(lk, [&] { return stop_ || generation_ != seen; });
        --sleepers_;
      }
      if (stop_) return;
      seen = generation_;
      job = current_;
      // Registered under mu_: the owner clears current_ under mu_ and then
      // waits for users to drop to zero before the Job leaves its stack.
      if (job) job->users.fetch_add(1, std::memory_order_acq_rel);
    }
    if (!job) continue;
    work_on(*job);
    job->users.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run_tasks(int64_t ntasks, const std::function<void(int64_t)>& fn) {
  if (ntasks <= 0) return;
  std::unique_lock<std::mutex> own(busy_, std::defer_lock);
  if (ntasks == 1 || size_ == 1 || t_inside_pool || !own.try_lock()) {
    for (int64_t t = 0; t < ntasks; ++t) fn(t);
    return;
  }
  Job job;
  job.fn = &fn;
  job.ntasks = ntasks;
  bool sleeping = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    current_ = &job;
    ++generation_;
    published_.store(generation_, std::memory_order_release);
    sleeping = sleepers_ > 0;
  }
  if (sleeping) wake_.notify_all();
  work_on(job);
  while (job.done.load(std::memory_order_acquire) < ntasks) std::this_thread::yield();
  {
    std::lock_guard<std::mutex> lk(mu_);
    current_ = nullptr;
  }
  while (job.users.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  own.unlock();
  if (job.error) std::rethrow_exception(job.error);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, static_cast<int64_t>(available()) * 4);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  int64_t step = (n + chunks - 1) / chunks;
  chunks = (n + step - 1) / step;
  run_tasks(chunks, [&](int64_t c) { fn(c * step, std::min(n, (c + 1) * step)); });
}

}  // namespace infopt
