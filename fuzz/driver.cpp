// headcal_fuzz: a deterministic mutation driver over the targets of targets.cpp, built with ASan +
// UBSan (fuzz/CMakeLists.txt). For each target it starts from the seed files, writes each mutated
// input where the reader expects it and reads it in-process. Findings: a sanitizer report (the
// process aborts), an input that takes longer than --timeout (the process exits 3), an exception
// other than hc::InputError, or an InputError message that is not one line naming the file.
// The input being read is always on disk in the work folder, so a crash leaves its reproducer.
#include <hdf5.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "fuzz/mutate.h"
#include "fuzz/targets.h"

// The sanitizer allocator's hooks (libasan exports them; GCC ships no header for them).
extern "C" {
size_t __sanitizer_get_allocated_size(const volatile void* p);
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, size_t),
                                              void (*free_hook)(const volatile void*));
}

namespace fs = std::filesystem;
using hc::fuzz::Target;

namespace {

// Live heap bytes and their peak since the last reset: what a reader allocates for an input.
std::atomic<long long> g_live_bytes{0}, g_peak_bytes{0};
void on_malloc(const volatile void*, size_t size) {
  const long long now = g_live_bytes.fetch_add(static_cast<long long>(size)) + static_cast<long long>(size);
  long long peak = g_peak_bytes.load();
  while (now > peak && !g_peak_bytes.compare_exchange_weak(peak, now)) {
  }
}
void on_free(const volatile void* p) {
  g_live_bytes.fetch_sub(static_cast<long long>(__sanitizer_get_allocated_size(p)));
}

// An input may make its reader allocate at most kAllocPerInputByte times the bytes of the folder it
// reads (the mutated file and the files beside it) plus kAllocFloor, before accepting or rejecting
// it: the readers' fixed costs (libhdf5's caches, YAML and JSON trees of a small file) sit under the
// floor, and an allocation sized by a number the file states, not by its bytes, shows above it.
constexpr long long kAllocPerInputByte = 16;
constexpr long long kAllocFloor = 64LL << 20;

struct Options {
  std::string target = "all";
  std::string source = HEADCAL_SOURCE_DIR;
  std::string work = (fs::temp_directory_path() / "headcal-fuzz").string();
  long runs = 1000;
  uint64_t seed = 1;
  unsigned timeout_s = 20;
  std::vector<std::string> replay;
};

struct Stats {
  long runs = 0, accepted = 0, rejected = 0, findings = 0;
  long long most_allocated = 0;     // the largest peak allocation of one input, bytes
  long long most_allocated_for = 0;  // the bytes that input's folder held
};

long long folder_bytes(const std::string& dir) {
  long long bytes = 0;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) bytes += static_cast<long long>(entry.file_size());
  return bytes;
}

char g_hang_message[4096];

void on_alarm(int) {
  ssize_t ignored = ::write(STDERR_FILENO, g_hang_message, std::strlen(g_hang_message));
  (void)ignored;
  ::_exit(3);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs the target on the bytes; returns "" when it accepted or rejected them properly, else
// what is wrong. `accepted` tells which.
std::string run_one(const Target& t, const std::string& dir, const std::string& input, bool* accepted,
                    unsigned timeout_s, Stats* stats) {
  const std::string path = (fs::path(dir) / t.file_name).string();
  write_file(path, input);
  const long long input_bytes = folder_bytes(dir);
  const long long baseline = g_live_bytes.load();
  g_peak_bytes.store(baseline);
  std::snprintf(g_hang_message, sizeof g_hang_message,
                "headcal_fuzz: %s: an input ran longer than %u s (hang); it is kept at %s\n", t.name.c_str(),
                timeout_s, path.c_str());
  ::alarm(timeout_s);
  std::string problem;
  *accepted = false;
  try {
    t.read(path, dir);
    *accepted = true;
  } catch (const hc::InputError& e) {
    const std::string what = e.what();
    if (what.find('\n') != std::string::npos) problem = "error message of several lines: " + what;
    else if (what.find(dir) == std::string::npos) problem = "error message names neither file nor folder: " + what;
  } catch (const hc::Error& e) {
    problem = std::string("hc::Error that is not an InputError (exit ") + std::to_string(e.exit_code()) + "): " + e.what();
  } catch (const std::bad_alloc&) {
    problem = "std::bad_alloc (an allocation sized by the input)";
  } catch (const std::exception& e) {
    problem = std::string("unexpected exception: ") + e.what();
  }
  ::alarm(0);
  const long long allocated = g_peak_bytes.load() - baseline;
  if (allocated > stats->most_allocated) {
    stats->most_allocated = allocated;
    stats->most_allocated_for = input_bytes;
  }
  if (problem.empty() && allocated > kAllocPerInputByte * input_bytes + kAllocFloor)
    problem = "allocated " + std::to_string(allocated >> 20) + " MiB for " + std::to_string(input_bytes >> 10) +
              " KiB of input (more than " + std::to_string(kAllocPerInputByte) + " x the input + " +
              std::to_string(kAllocFloor >> 20) + " MiB)";
  return problem;
}

// Copies the target's base folder into a fresh work folder for it.
std::string prepare_dir(const Options& o, const Target& t) {
  const fs::path dir = fs::path(o.work) / t.name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  if (!t.base_dir.empty())
    for (const auto& entry : fs::directory_iterator(fs::path(o.source) / t.base_dir))
      fs::copy_file(entry.path(), dir / entry.path().filename());
  return dir.string();
}

Stats campaign(const Options& o, const Target& t) {
  Stats s;
  const std::string dir = prepare_dir(o, t);
  const fs::path findings = fs::path(o.work) / "findings";
  std::vector<std::string> corpus;
  for (const std::string& seed : t.seeds) corpus.push_back(read_file((fs::path(o.source) / seed).string()));
  const size_t n_seeds = corpus.size();
  std::mt19937_64 rng(o.seed ^ std::hash<std::string>{}(t.name));
  auto record = [&](const std::string& input, const std::string& problem, const std::string& label) {
    fs::create_directories(findings);
    const fs::path kept = findings / (t.name + "-" + label + "-" + t.file_name);
    write_file(kept.string(), input);
    std::printf("FINDING %s %s: %s\n  input kept at %s\n", t.name.c_str(), label.c_str(), problem.substr(0, 400).c_str(),
                kept.c_str());
    ++s.findings;
  };
  if (!o.replay.empty()) {
    for (const std::string& file : o.replay) {
      bool accepted = false;
      const std::string input = read_file(file);
      const std::string problem = run_one(t, dir, input, &accepted, o.timeout_s, &s);
      ++s.runs;
      (accepted ? s.accepted : s.rejected)++;
      if (!problem.empty()) record(input, problem, fs::path(file).stem().string());
    }
    return s;
  }
  for (long i = 0; i < o.runs; ++i) {
    const std::string& base = corpus[static_cast<size_t>(rng() % corpus.size())];
    const std::string input = i < static_cast<long>(n_seeds) ? corpus[static_cast<size_t>(i)] : hc::fuzz::mutate(base, corpus, rng);
    bool accepted = false;
    const std::string problem = run_one(t, dir, input, &accepted, o.timeout_s, &s);
    ++s.runs;
    (accepted ? s.accepted : s.rejected)++;
    if (!problem.empty()) record(input, problem, "run" + std::to_string(i));
    // Accepted inputs (and a few rejected ones) join the corpus: mutations go deeper from there.
    if (accepted || rng() % 16 == 0) {
      if (corpus.size() < 256) corpus.push_back(input);
      else corpus[n_seeds + static_cast<size_t>(rng() % (corpus.size() - n_seeds))] = input;
    }
  }
  return s;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "headcal_fuzz: %s\nusage: headcal_fuzz [TARGET|all] [--runs N] [--seed S] [--timeout SECONDS] "
               "[--source DIR] [--work DIR] [--replay FILE...]\ntargets:",
               why);
  for (const Target& t : hc::fuzz::all_targets()) std::fprintf(stderr, " %s", t.name.c_str());
  std::fprintf(stderr, "\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--runs") o.runs = std::stol(value());
      else if (a == "--seed") o.seed = std::stoull(value());
      else if (a == "--timeout") o.timeout_s = static_cast<unsigned>(std::stoul(value()));
      else if (a == "--source") o.source = value();
      else if (a == "--work") o.work = value();
      else if (a == "--replay") while (i + 1 < argc && argv[i + 1][0] != '-') o.replay.push_back(argv[++i]);
      else if (a[0] != '-') o.target = a;
      else return usage(("unknown option " + a).c_str());
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  if (o.runs < 0) return usage("--runs must be >= 0");
  ::signal(SIGALRM, on_alarm);
  __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
  H5dont_atexit();  // as headcal: no HDF5 shutdown noise at exit
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  long total_findings = 0;
  bool matched = false;
  std::printf("%-16s %8s %9s %9s %9s %8s %14s\n", "target", "runs", "accepted", "rejected", "findings", "seconds",
              "most alloc/in");
  for (const Target& t : hc::fuzz::all_targets()) {
    if (o.target == "all" ? t.named_only : o.target != t.name) continue;
    matched = true;
    const auto t0 = std::chrono::steady_clock::now();
    const Stats s = campaign(o, t);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char most[32];
    std::snprintf(most, sizeof most, "%.1f/%.2f MiB", s.most_allocated / 1048576.0, s.most_allocated_for / 1048576.0);
    std::printf("%-16s %8ld %9ld %9ld %9ld %8.1f %14s\n", t.name.c_str(), s.runs, s.accepted, s.rejected, s.findings,
                seconds, most);
    std::fflush(stdout);
    total_findings += s.findings;
  }
  if (!matched) return usage(("no target '" + o.target + "'").c_str());
  return total_findings == 0 ? 0 : 1;
}
