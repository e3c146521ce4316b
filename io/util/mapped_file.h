#pragma once
// Whole files: a read-only memory mapping, or a copy in a string. Both throw InputError naming
// the file when it cannot be opened.
#include <cstddef>
#include <cstdint>
#include <string>

namespace hc {

// Largest file read whole into memory: far above any config, tokenizer, profile or prompt.
constexpr uint64_t kMaxWholeFileBytes = uint64_t(1) << 30;

// The whole file as bytes. Throws InputError naming the file when it cannot be opened (with
// `cannot_open`), is not a regular file, or is larger than max_bytes.
std::string read_whole_file(const std::string& path, const std::string& cannot_open = "cannot open",
                            uint64_t max_bytes = kMaxWholeFileBytes);

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hc
