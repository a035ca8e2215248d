// A small fixed pool for data-parallel loops. The calling thread takes part in every loop.
// Waiting threads spin briefly (a decode step runs hundreds of tiny loops; a futex wake for
// each would cost more than the work), then block, so a shared or oversubscribed CPU does
// not turn every barrier into a lost time slice.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace ts {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads <= 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls fn(thread_index, begin, end) over [0, n) split into size() contiguous ranges.
  // Blocks until all are done. Not reentrant: call from one thread at a time.
  void parallel_for(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn);

 private:
  void worker_loop(int index);
  void run_share(int index);

  std::vector<std::thread> workers_;
  const std::function<void(int, int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  std::atomic<uint32_t> generation_{0};
  std::atomic<int32_t> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace ts
