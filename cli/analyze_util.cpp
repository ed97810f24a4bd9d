// Helpers of `ionmsm analyze`; see analyze_util.hpp.
#include "analyze_util.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace ionmsm::cli::analyze {

namespace fs = std::filesystem;

std::string format_number(double v) {
  if (!std::isfinite(v)) return std::string();
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  if (res.ec != std::errc()) {
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
  }
  return std::string(buf, res.ptr);
}

Json json_number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

std::size_t replace_non_finite(Json& j) {
  std::size_t n = 0;
  if (j.is_number_float()) {
    if (!std::isfinite(j.get<double>())) {
      j = nullptr;
      ++n;
    }
  } else if (j.is_array() || j.is_object()) {
    for (auto& x : j) n += replace_non_finite(x);
  }
  return n;
}

std::string dump_report(const Json& j) {
  if (!j.is_object()) return j.dump() + "\n";
  std::string s = "{\n";
  std::size_t i = 0;
  for (auto it = j.begin(); it != j.end(); ++it, ++i) {
    s += " " + Json(it.key()).dump() + ": ";
    const Json& v = it.value();
    if (v.is_array() && !v.empty() && v.front().is_structured()) {
      s += "[\n";
      for (std::size_t k = 0; k < v.size(); ++k)
        s += "  " + v[k].dump() + (k + 1 < v.size() ? ",\n" : "\n");
      s += " ]";
    } else if (v.is_object() && !v.empty()) {
      s += "{\n";
      std::size_t k = 0;
      for (auto jt = v.begin(); jt != v.end(); ++jt, ++k)
        s += "  " + Json(jt.key()).dump() + ": " + jt.value().dump() +
             (k + 1 < v.size() ? ",\n" : "\n");
      s += " }";
    } else {
      s += v.dump();
    }
    s += i + 1 < j.size() ? ",\n" : "\n";
  }
  s += "}\n";
  return s;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const fs::path tmp =
      dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()));
  auto fail = [&](const std::string& why) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw std::runtime_error("cannot write '" + path + "': " + why);
  };
  {
    std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
    if (!os) fail(std::strerror(errno));
    os.write(content.data(), static_cast<std::streamsize>(content.size()));
    os.flush();
    if (!os) fail("write error");
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) fail(ec.message());
}

double independent_windows(std::uint64_t n_origins, std::int64_t nevery, std::int64_t lag_steps) {
  if (lag_steps <= 0) return 0.0;
  return static_cast<double>(n_origins) * static_cast<double>(nevery) /
         static_cast<double>(lag_steps);
}

LagChoice choose_default_lag(const std::vector<LagCandidate>& lags, std::int64_t nevery) {
  LagChoice best, shortest;
  for (std::size_t i = 0; i < lags.size(); ++i) {
    const LagCandidate& c = lags[i];
    if (c.total_counts == 0) continue;
    const double w = independent_windows(c.n_origins, nevery, c.lag_steps);
    if (shortest.index < 0 || c.lag_steps < lags[static_cast<std::size_t>(shortest.index)].lag_steps)
      shortest = {static_cast<int>(i), w, true};
    if (w >= kMinIndependentWindows &&
        (best.index < 0 || c.lag_steps > lags[static_cast<std::size_t>(best.index)].lag_steps))
      best = {static_cast<int>(i), w, false};
  }
  return best.index >= 0 ? best : shortest;
}

PlotRun run_plot_script(const std::string& python, const std::string& script,
                        const std::string& report_json, const std::string& out_dir) {
  PlotRun r;
  std::error_code ec;
  if (script.empty()) {
    r.message = "no plot script configured (set IONMSM_PLOT_SCRIPT to cli/plot_report.py)";
    return r;
  }
  if (!fs::is_regular_file(script, ec)) {
    r.message = "plot script '" + script + "' not found (set IONMSM_PLOT_SCRIPT)";
    return r;
  }
  if (::access(python.c_str(), X_OK) != 0) {
    r.message = "Python interpreter '" + python + "' not found or not executable";
    return r;
  }
  std::vector<std::string> argv_s = {python, script, report_json, "--out", out_dir};
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, python.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.message = "cannot start '" + python + "': " + std::strerror(rc);
    return r;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      r.message = std::string("waiting for the plot script failed: ") + std::strerror(errno);
      return r;
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    r.ok = true;
    return r;
  }
  if (WIFEXITED(status))
    r.message = "plot script exited with status " + std::to_string(WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    r.message = "plot script killed by signal " + std::to_string(WTERMSIG(status));
  else
    r.message = "plot script failed";
  return r;
}

PlotRun run_configured_plot_script(const char* compiled_script, const char* script_env,
                                   const std::string& input, const std::string& out_dir) {
  std::string script = compiled_script;
  if (const char* e = std::getenv(script_env); e && *e) script = e;
  std::string python = "/usr/bin/python3";
  if (const char* e = std::getenv("IONMSM_PYTHON"); e && *e) python = e;
  return run_plot_script(python, script, input, out_dir);
}

}  // namespace ionmsm::cli::analyze
