#pragma once
// The one small thread pool of the project: independent tasks on the calling thread plus at
// most one helper thread (the target machines of `ionmsm analyze` are laptops and 2-core VMs).
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <type_traits>

namespace ionmsm {

/// Runs task(i, worker) for every i in [0, n): on the calling thread (worker 0) and, when
/// n > 1 and the machine has at least 2 hardware threads, on one helper thread (worker 1).
/// Tasks are handed out in increasing i; results must go to per-task slots so that the outcome
/// does not depend on the scheduling. If tasks throw, no further task is started and the
/// exception of the lowest such i is rethrown after both threads have finished.
template <class Task>
void parallel_for(std::size_t n, Task&& task) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr error[2];
  std::size_t error_index[2] = {n, n};
  auto worker = [&](int id) {
    for (std::size_t i = next++; i < n; i = next++) {
      try {
        task(i, id);
      } catch (...) {
        error[id] = std::current_exception();
        error_index[id] = i;
        next = n;  // start nothing new; tasks below i were already handed out
        return;
      }
    }
  };
  std::thread helper;
  if (n > 1 && std::thread::hardware_concurrency() >= 2) helper = std::thread(worker, 1);
  worker(0);
  if (helper.joinable()) helper.join();
  const int first = error_index[1] < error_index[0] ? 1 : 0;
  if (error[first]) std::rethrow_exception(error[first]);
}

}  // namespace ionmsm
