// open_model: picks the reader from what the path is. Kept apart from model_file.cpp so code that
// only needs tensor names does not pull both readers into its link.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "io/model/gguf.h"
#include "io/model/hf_model.h"
#include "io/model/model_file.h"

namespace fs = std::filesystem;

namespace hc {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const char* kAccepted =
    "headcal reads a GGUF file or a Hugging Face model directory (config.json + *.safetensors)";

}  // namespace

std::unique_ptr<ModelFile> open_model(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw InputError(path, std::string("cannot open model: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return std::make_unique<HfModel>(path);
  if (!S_ISREG(st.st_mode)) throw InputError(path, std::string("not a regular file or directory; ") + kAccepted);

  char magic[4] = {0, 0, 0, 0};
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, std::string("cannot open model: ") + std::strerror(errno));
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) return std::make_unique<GgufFile>(path);

  const std::string file_name = fs::path(path).filename().string();
  if (ends_with(file_name, ".safetensors") || file_name == "config.json" ||
      ends_with(file_name, ".safetensors.index.json")) {
    std::string dir = fs::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    throw InputError(path, "a Hugging Face model is read as a directory (it needs config.json next to the "
                           ".safetensors files): pass the directory " + dir + " instead");
  }
  throw InputError(path, std::string("not a recognised model (no GGUF magic); ") + kAccepted);
}

}  // namespace hc
