#include "bench/fanout/proc_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace bridge::bench {

ProcSample SampleProcess(pid_t pid) {
  ProcSample s;
  if (pid <= 0) return s;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream stat(dir + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return s;
  // The command name (field 2) may hold spaces: parse after its closing parenthesis.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return s;
  std::istringstream in(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields 3.. follow; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  s.cpu_seconds = static_cast<double>(utime + stime) / tick;
  s.kernel_seconds = static_cast<double>(stime) / tick;
  std::ifstream status(dir + "/status");
  while (std::getline(status, line)) {
    auto value = [&](const char* key) -> int64_t {
      return std::stoll(line.substr(std::string(key).size()));
    };
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = value("VmRSS:");
    if (line.rfind("VmHWM:", 0) == 0) s.peak_rss_kb = value("VmHWM:");
    if (line.rfind("Threads:", 0) == 0) s.threads = static_cast<int>(value("Threads:"));
  }
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir + "/task", ec)) {
    std::ifstream ts(task.path() / "status");
    while (std::getline(ts, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        s.context_switches += std::stoll(line.substr(line.find(':') + 1));
      }
    }
  }
  s.ok = true;
  return s;
}

bool ResetPeakRss(pid_t pid) {
  if (pid <= 0) return false;
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  out << "5\n";
  out.flush();
  return static_cast<bool>(out);
}

double OwnCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

uint64_t RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

}  // namespace bridge::bench
