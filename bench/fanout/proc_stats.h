#ifndef BRIDGE_BENCH_FANOUT_PROC_STATS_H_
#define BRIDGE_BENCH_FANOUT_PROC_STATS_H_

#include <sys/types.h>

#include <cstdint>

namespace bridge::bench {

// What /proc says about one process (all its threads) at one instant. A pid of 0 or a
// process that is gone reads as all zeros with ok = false.
struct ProcSample {
  bool ok = false;
  double cpu_seconds = 0;     // utime + stime
  double kernel_seconds = 0;  // stime: the part spent in the kernel (syscalls, softirqs)
  int64_t rss_kb = 0;         // VmRSS
  int64_t peak_rss_kb = 0;    // VmHWM
  int threads = 0;
  // Voluntary + involuntary, summed over the live threads: a thread hop per delivery
  // shows up here.
  int64_t context_switches = 0;
};

ProcSample SampleProcess(pid_t pid);
// Resets the process' peak RSS (VmHWM) to its current RSS; false if not permitted.
bool ResetPeakRss(pid_t pid);
// This process' own CPU seconds (user + system, all threads).
double OwnCpuSeconds();
// Raises the open-files limit to its hard maximum; returns the new soft limit.
uint64_t RaiseFileLimit();

}  // namespace bridge::bench

#endif  // BRIDGE_BENCH_FANOUT_PROC_STATS_H_
