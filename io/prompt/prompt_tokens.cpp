// Token files: .npy, HDF5 and plain text lists of ids.
#include <hdf5.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "io/util/mapped_file.h"
#include "io/prompt/prompt.h"

namespace hc {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The value text after 'key': in a .npy header dict.
std::string npy_field(const std::string& header, const std::string& key, const std::string& path) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) throw InputError(path, ".npy header has no '" + key + "'");
  size_t colon = header.find(':', k);
  if (colon == std::string::npos) throw InputError(path, ".npy header is malformed");
  size_t start = colon + 1;
  while (start < header.size() && header[start] == ' ') ++start;
  size_t end = start;
  if (start < header.size() && header[start] == '(') end = header.find(')', start) + 1;
  else end = header.find_first_of(",}", start);
  if (end == std::string::npos || end == 0) throw InputError(path, ".npy header is malformed");
  return header.substr(start, end - start);
}

std::vector<int64_t> read_npy(const std::string& path) {
  const std::string bytes = read_whole_file(path);
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw InputError(path, "not a .npy file (bad magic)");
  const int major = static_cast<uint8_t>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw InputError(path, ".npy header is truncated");
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[8 + i]);
    header_start = 12;
  } else {
    throw InputError(path, ".npy version " + std::to_string(major) + " is not supported (1, 2, 3)");
  }
  if (header_len > bytes.size() - header_start) throw InputError(path, ".npy header is truncated");
  const std::string header = bytes.substr(header_start, header_len);
  std::string descr = npy_field(header, "descr", path);
  descr.erase(std::remove(descr.begin(), descr.end(), '\''), descr.end());
  const std::string fortran = npy_field(header, "fortran_order", path);
  const std::string shape = npy_field(header, "shape", path);

  // Shape: (n,), (1, n) or (n, 1): one row or column is the same sequence in either order.
  std::vector<int64_t> dims;
  for (size_t i = 0; i < shape.size();) {
    if (std::isdigit(static_cast<unsigned char>(shape[i]))) {
      size_t j = i;
      while (j < shape.size() && std::isdigit(static_cast<unsigned char>(shape[j]))) ++j;
      // 15 digits bound every dimension far above any file this reader accepts, without overflow.
      if (j - i > 15) throw InputError(path, ".npy shape " + shape.substr(0, 60) + " has a dimension too large");
      dims.push_back(std::stoll(shape.substr(i, j - i)));
      i = j;
    } else {
      ++i;
    }
  }
  int64_t count = 0;
  if (dims.size() == 1) count = dims[0];
  else if (dims.size() == 2 && (dims[0] == 1 || dims[1] == 1)) count = dims[0] * dims[1];
  else throw InputError(path, ".npy shape " + shape.substr(0, 60) + " is not a 1-D sequence of token ids (or one row)");
  (void)fortran;  // irrelevant for one row or column

  if (descr.size() < 3 || (descr[0] != '<' && descr[0] != '|'))
    throw InputError(path, ".npy dtype '" + descr + "' is not a little-endian integer type");
  const char kind = descr[1];
  const int width = std::atoi(descr.c_str() + 2);
  if ((kind != 'i' && kind != 'u') || (width != 1 && width != 2 && width != 4 && width != 8))
    throw InputError(path, ".npy dtype '" + descr + "' is not an integer type (token ids must be integers)");
  const size_t data_start = header_start + header_len;
  const size_t available = bytes.size() - data_start;
  if (static_cast<uint64_t>(count) > available / static_cast<size_t>(width))
    throw InputError(path, ".npy data is truncated: the shape says " + std::to_string(count) + " values of " +
                               std::to_string(width) + " bytes, the file has " + std::to_string(available) +
                               " bytes of data");
  std::vector<int64_t> ids(static_cast<size_t>(count));  // [count]
  const uint8_t* p = reinterpret_cast<const uint8_t*>(bytes.data()) + data_start;
  for (int64_t i = 0; i < count; ++i, p += width) {
    uint64_t u = 0;
    for (int b = width - 1; b >= 0; --b) u = (u << 8) | p[b];
    int64_t v;
    if (kind == 'u') {
      if (u > static_cast<uint64_t>(INT64_MAX)) throw InputError(path, ".npy value at index " + std::to_string(i) + " is too large");
      v = static_cast<int64_t>(u);
    } else {
      const int shift = 64 - 8 * width;  // sign-extend
      v = static_cast<int64_t>(u << shift) >> shift;
    }
    ids[static_cast<size_t>(i)] = v;
  }
  return ids;
}

// RAII for HDF5 ids, and the error stack silenced while we probe (restored afterwards).
struct H5Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~H5Handle() {
    if (id >= 0) close(id);
  }
};

struct H5QuietErrors {
  H5E_auto2_t old_func = nullptr;
  void* old_data = nullptr;
  H5QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~H5QuietErrors() { H5Eset_auto2(H5E_DEFAULT, old_func, old_data); }
};

herr_t collect_dataset(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

std::vector<int64_t> read_h5(const std::string& file, std::string dataset) {
  if (!std::ifstream(file).good()) throw InputError(file, "cannot open the token file");
  H5QuietErrors quiet;
  if (H5Fis_hdf5(file.c_str()) <= 0) throw InputError(file, "not an HDF5 file");
  H5Handle f{H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
  if (f.id < 0) throw InputError(file, "cannot open as HDF5");
  if (dataset.empty()) {
    if (H5Lexists(f.id, "tokens", H5P_DEFAULT) > 0) {
      dataset = "tokens";
    } else {
      std::vector<std::string> names;
      H5Literate(f.id, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_dataset, &names);
      if (names.size() != 1)
        throw InputError(file, "no dataset 'tokens' and not exactly one dataset at the root; name one as FILE.h5:/path");
      dataset = names[0];
    }
  }
  H5Handle d{H5Dopen2(f.id, dataset.c_str(), H5P_DEFAULT), H5Dclose};
  if (d.id < 0) throw InputError(file, "no dataset '" + dataset + "'");
  H5Handle type{H5Dget_type(d.id), H5Tclose};
  if (H5Tget_class(type.id) != H5T_INTEGER)
    throw InputError(file, "dataset '" + dataset + "' is not of an integer type (token ids must be integers)");
  H5Handle space{H5Dget_space(d.id), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  if (rank < 1 || rank > 2) throw InputError(file, "dataset '" + dataset + "' must be 1-D (or one row)");
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(space.id, dims, nullptr);
  if (rank == 2 && dims[0] != 1 && dims[1] != 1)
    throw InputError(file, "dataset '" + dataset + "' is 2-D with no dimension of 1; give one sequence");
  const hsize_t count = rank == 1 ? dims[0] : dims[0] * dims[1];
  if (count > (hsize_t(1) << 34)) throw InputError(file, "dataset '" + dataset + "' is implausibly large");
  // Dimensions are only a claim (an unwritten dataset reads as fill values): at most 8 ids per
  // byte of the file, so the ids read never take more than 64 times its size.
  std::error_code size_error;
  const uintmax_t file_bytes = std::filesystem::file_size(file, size_error);
  if (!size_error && count > 8 * hsize_t(file_bytes))
    throw InputError(file, "dataset '" + dataset + "' claims " + std::to_string(count) + " ids, more than a file of " +
                               std::to_string(file_bytes) + " bytes can hold");
  std::vector<int64_t> ids(static_cast<size_t>(count));  // [count]
  if (count > 0 && H5Dread(d.id, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids.data()) < 0)
    throw InputError(file, "cannot read dataset '" + dataset + "'");
  return ids;
}

std::vector<int64_t> read_text_ids(const std::string& path) {
  const std::string text = read_whole_file(path);
  std::vector<int64_t> ids;
  size_t line = 1;
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '[' || c == ']') {
      ++i;
    } else {
      size_t j = i;
      while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j])) && text[j] != ',' && text[j] != ']' &&
             text[j] != '#')
        ++j;
      const std::string word = text.substr(i, j - i);
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(word, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != word.size() || word.empty())
        throw InputError(path, "line " + std::to_string(line) + ": '" + word.substr(0, 40) + "' is not an integer token id");
      ids.push_back(v);
      i = j;
    }
  }
  return ids;
}

}  // namespace

std::vector<int64_t> read_token_file(const std::string& path) {
  // FILE.h5:/dataset names a dataset; the colon form is only taken when FILE.h5 is what exists.
  for (const char* ext : {".h5:", ".hdf5:"}) {
    size_t at = path.find(ext);
    if (at != std::string::npos) {
      size_t colon = at + std::strlen(ext) - 1;
      return read_h5(path.substr(0, colon), path.substr(colon + 1));
    }
  }
  if (ends_with(path, ".h5") || ends_with(path, ".hdf5")) return read_h5(path, "");
  if (ends_with(path, ".npy")) return read_npy(path);
  return read_text_ids(path);
}

}  // namespace hc
