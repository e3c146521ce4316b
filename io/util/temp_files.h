#pragma once
// Temporary files of the atomic writers (`.<name>.tmp-<pid>-<n>` beside the final file, renamed
// into place when complete). They are registered here so that SIGINT/SIGTERM can remove them, and
// a new run removes those of earlier runs whose process is gone.
#include <string>

namespace hc {

// A fresh temporary path for `final_path`, registered for removal on SIGINT/SIGTERM. Stale
// temporaries of `final_path` (their PID no longer alive) are removed first.
std::string make_temp_path(const std::string& final_path);

// Stops tracking `temp_path` (after it was renamed into place or removed).
void release_temp_path(const std::string& temp_path);

// Installs SIGINT/SIGTERM handlers that remove every registered temporary, then end the process
// with the signal's default action (so the exit status still says which signal).
void install_temp_cleanup_handlers();

// How many temporaries are registered now (for tests).
int registered_temp_count();

}  // namespace hc
