#include "io/util/temp_files.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/error.h"

namespace hc {

namespace fs = std::filesystem;

namespace {

// Fixed storage the signal handler can read without allocating: a slot is free (0), being
// written (1) or holds a path (2).
constexpr int kSlots = 64;
constexpr size_t kPathMax = 4096;
struct Slot {
  std::atomic<int> state{0};
  char path[kPathMax];
};
Slot g_slots[kSlots];

bool process_alive(long pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// Removes `.<name>.tmp-<pid>-<n>` files in `dir` whose pid is not a live process.
void remove_stale_temps(const fs::path& dir, const std::string& name) {
  const std::string prefix = "." + name + ".tmp-";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (file.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = file.substr(prefix.size());  // "<pid>-<n>"
    const size_t dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || dash > 9 ||
        rest.find_first_not_of("0123456789-") != std::string::npos)
      continue;
    const long pid = std::stol(rest.substr(0, dash));
    if (pid == static_cast<long>(::getpid()) || process_alive(pid)) continue;
    std::error_code remove_ec;
    fs::remove(it->path(), remove_ec);
  }
}

void on_signal(int sig) {
  for (Slot& s : g_slots)
    if (s.state.load() == 2) ::unlink(s.path);  // unlink is async-signal-safe
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

std::string make_temp_path(const std::string& final_path) {
  static std::atomic<int> counter{0};
  const fs::path p(final_path);
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string name = p.filename().string();
  remove_stale_temps(dir, name);
  const std::string tmp =
      (dir / ("." + name + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++))).string();
  if (tmp.size() >= kPathMax) throw InputError(final_path, "the output path is too long");
  for (Slot& s : g_slots) {
    int expected = 0;
    if (!s.state.compare_exchange_strong(expected, 1)) continue;
    std::memcpy(s.path, tmp.c_str(), tmp.size() + 1);
    s.state.store(2);
    return tmp;
  }
  return tmp;  // every slot taken: the file is still removed on errors, only not on a signal
}

void release_temp_path(const std::string& temp_path) {
  for (Slot& s : g_slots)
    if (s.state.load() == 2 && temp_path == s.path) {
      s.state.store(0);
      return;
    }
}

void install_temp_cleanup_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

int registered_temp_count() {
  int n = 0;
  for (const Slot& s : g_slots) n += s.state.load() == 2 ? 1 : 0;
  return n;
}

}  // namespace hc
