#include "util/thread_pool.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TS_CPU_RELAX() _mm_pause()
#else
#define TS_CPU_RELAX() std::this_thread::yield()
#endif

namespace ts {
namespace {

constexpr int kSpins = 2000;  // ~50 us of pause instructions before blocking

// Waits until `a` no longer holds `old`: spin first, then block in the kernel.
template <class T>
T wait_change(const std::atomic<T>& a, T old) {
  for (int i = 0; i < kSpins; ++i) {
    T v = a.load(std::memory_order_acquire);
    if (v != old) return v;
    TS_CPU_RELAX();
  }
  a.wait(old, std::memory_order_acquire);
  return a.load(std::memory_order_acquire);
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_share(int index) {
  const int64_t n = job_n_, parts = size();
  const int64_t begin = n * index / parts, end = n * (index + 1) / parts;
  if (begin < end) (*job_)(index, begin, end);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn) {
  if (workers_.empty() || n <= 1) {
    if (n > 0) fn(0, 0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  pending_.store(int32_t(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  run_share(0);
  for (int32_t left; (left = pending_.load(std::memory_order_acquire)) != 0;) wait_change(pending_, left);
}

void ThreadPool::worker_loop(int index) {
  uint32_t seen = 0;  // the generation at construction: a job posted before this thread ran is still new to it
  for (;;) {
    seen = wait_change(generation_, seen);
    if (stop_.load()) return;
    run_share(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

}  // namespace ts
