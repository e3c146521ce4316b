#include <cstdio>

#include "cli/command.h"

namespace hc::cli {

void print_progress_line(const std::string& text, int done, int total, bool tty) {
  if (total < 1) return;
  if (!tty && done != total && (done * 10) / total == ((done - 1) * 10) / total) return;
  std::fprintf(stderr, "%s%s%s", tty ? "\r" : "", text.c_str(), tty && done != total ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace hc::cli
