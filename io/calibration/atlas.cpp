#include "io/calibration/atlas.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "common/error.h"
#include "io/util/temp_files.h"

namespace fs = std::filesystem;

namespace hc {

namespace {

// Sanity bounds on meta counts: far above any model headcal targets (Llama-3-70B has 80 layers,
// 64 heads; 1M-token prompts), low enough that a corrupt count cannot drive a huge allocation.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxHeadDim = 1024;
constexpr int64_t kMaxTokens = int64_t(1) << 24;
constexpr int64_t kMaxMapSize = 4096;
// A candidate table holds heads x grid rows; grids are ~100 entries, 1M rows per layer is a
// corrupt file, not a big grid.
constexpr int64_t kMaxCandidateRows = int64_t(1) << 20;
// Prompt sets hold a handful of prompts; thousands would be a corrupt count.
constexpr int64_t kMaxPrompts = 1024;

// HDF5 prints its own error stack to stderr by default; headcal reports errors itself.
void silence_hdf5_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// Owns one HDF5 identifier.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Hid(Hid&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      closer_ = o.closer_;
      o.id_ = -1;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() { reset(); }
  void reset() {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = -1;
  }
  hid_t get() const { return id_; }
  // Gives up ownership (the caller closes the id).
  hid_t release() {
    hid_t id = id_;
    id_ = -1;
    return id;
  }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

Hid checked(hid_t id, Hid::Closer closer, const std::string& file, const std::string& what) {
  if (id < 0) throw InputError(file, what);
  return Hid(id, closer);
}
void check_status(herr_t status, const std::string& file, const std::string& what) {
  if (status < 0) throw InputError(file, what);
}

// On-disk candidate row (HDF5 compound; fields matched by name on read).
struct DiskRow {
  int32_t head;
  int32_t pattern;  // stored as the enum type below
  int32_t p1;
  int32_t p2;
  double cost;
  double density;
  double recall;
  double out_err;
};

Hid pattern_enum_type() {
  Hid t(H5Tenum_create(H5T_NATIVE_INT32), H5Tclose);
  for (int32_t v = 0; v < kNumPatterns; ++v)
    H5Tenum_insert(t.get(), pattern_name(static_cast<Pattern>(v)), &v);
  return t;
}

Hid candidate_row_type() {
  Hid t(H5Tcreate(H5T_COMPOUND, sizeof(DiskRow)), H5Tclose);
  Hid e = pattern_enum_type();
  H5Tinsert(t.get(), "head", HOFFSET(DiskRow, head), H5T_NATIVE_INT32);
  H5Tinsert(t.get(), "pattern", HOFFSET(DiskRow, pattern), e.get());
  H5Tinsert(t.get(), "p1", HOFFSET(DiskRow, p1), H5T_NATIVE_INT32);
  H5Tinsert(t.get(), "p2", HOFFSET(DiskRow, p2), H5T_NATIVE_INT32);
  H5Tinsert(t.get(), "cost", HOFFSET(DiskRow, cost), H5T_NATIVE_DOUBLE);
  H5Tinsert(t.get(), "density", HOFFSET(DiskRow, density), H5T_NATIVE_DOUBLE);
  H5Tinsert(t.get(), "recall", HOFFSET(DiskRow, recall), H5T_NATIVE_DOUBLE);
  H5Tinsert(t.get(), "out_err", HOFFSET(DiskRow, out_err), H5T_NATIVE_DOUBLE);
  return t;
}

// ---- writing helpers ----

// Strings are stored fixed-length: variable-length ones live in HDF5's global heap, whose reader
// (HDF5 1.10) can loop forever on a damaged file, so version 2 atlases never hold one.
void write_string_attr(hid_t obj, const char* name, const std::string& value, const std::string& file) {
  Hid type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), std::max<size_t>(1, value.size()));
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attr = checked(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                     H5Aclose, file, std::string("cannot create attribute ") + name);
  std::string padded = value;
  padded.resize(std::max<size_t>(1, value.size()), '\0');
  check_status(H5Awrite(attr.get(), type.get(), padded.data()), file, std::string("cannot write attribute ") + name);
}

void write_int_attr(hid_t obj, const char* name, int64_t value, const std::string& file) {
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attr = checked(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                     H5Aclose, file, std::string("cannot create attribute ") + name);
  check_status(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), file,
               std::string("cannot write attribute ") + name);
}

void write_double_attr(hid_t obj, const char* name, double value, const std::string& file) {
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attr = checked(H5Acreate2(obj, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                     H5Aclose, file, std::string("cannot create attribute ") + name);
  check_status(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value), file,
               std::string("cannot write attribute ") + name);
}

void write_dataset(hid_t parent, const char* name, hid_t file_type, hid_t mem_type,
                   const std::vector<hsize_t>& dims, const void* data, const std::string& file) {
  Hid space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Hid ds = checked(H5Dcreate2(parent, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                   H5Dclose, file, std::string("cannot create dataset ") + name);
  hsize_t count = 1;
  for (hsize_t d : dims) count *= d;
  if (count > 0)
    check_status(H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), file,
                 std::string("cannot write dataset ") + name);
}

std::string temp_path_for(const std::string& path) { return make_temp_path(path); }

void validate_meta(const AtlasMeta& m, const std::string& file) {
  auto range = [&](const char* name, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
      throw InputError(file, std::string("meta ") + name + " = " + std::to_string(v) + " is outside [" +
                                 std::to_string(lo) + ", " + std::to_string(hi) + "]");
  };
  range("layers", m.layers, 1, kMaxLayers);
  range("heads", m.heads, 1, kMaxHeads);
  range("kv_heads", m.kv_heads, 1, m.heads);
  if (m.heads % m.kv_heads != 0)
    throw InputError(file, "meta heads = " + std::to_string(m.heads) + " is not a multiple of kv_heads = " +
                               std::to_string(m.kv_heads));
  range("head_dim", m.head_dim, 1, kMaxHeadDim);
  range("tokens", m.tokens, 1, kMaxTokens);
  range("block_size", m.block_size, 1, 4096);
  range("last_q", m.last_q, 1, kMaxTokens);
  range("v_sink", m.v_sink, 0, kMaxTokens);
  range("s_local", m.s_local, 0, kMaxTokens);
  range("map_size", m.map_size, 1, kMaxMapSize);
  range("statistics", m.statistics, 0, 1);
}

std::string row_problem(const CandidateRow& r, int64_t heads) {
  if (r.head < 0 || r.head >= heads)
    return "head " + std::to_string(r.head) + " outside [0, " + std::to_string(heads) + ")";
  if (!is_valid_pattern(static_cast<int32_t>(r.pattern)))
    return "unknown pattern value " + std::to_string(static_cast<int>(r.pattern));
  if (!std::isfinite(r.cost) || r.cost < 0) return "cost is negative or not finite";
  if (!std::isfinite(r.density) || r.density < 0) return "density is negative or not finite";
  // Recall is a float sum of probabilities: allow rounding a little above 1.
  if (!std::isfinite(r.recall) || r.recall < 0 || r.recall > 1.01) return "recall " + std::to_string(r.recall) + " outside [0, 1]";
  if (!std::isfinite(r.out_err) || r.out_err < 0) return "out_err is negative or not finite";
  return "";
}

// ---- reading helpers ----

bool has_attr(hid_t obj, const char* name) { return H5Aexists(obj, name) > 0; }

// `variable_ok`: version 1 atlases stored variable-length strings; later versions never do, and
// one found there is refused before HDF5 reads its heap.
std::string read_string_attr(hid_t obj, const char* name, const std::string& file, const std::string& where,
                             bool variable_ok = false) {
  if (!has_attr(obj, name)) throw InputError(file, where + ": missing attribute '" + name + "'");
  Hid attr = checked(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose, file, where + ": cannot open attribute " + name);
  Hid type = checked(H5Aget_type(attr.get()), H5Tclose, file, where + ": bad attribute " + name);
  if (H5Tget_class(type.get()) != H5T_STRING)
    throw InputError(file, where + ": attribute '" + name + "' is not a string");
  Hid space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    throw InputError(file, where + ": attribute '" + name + "' is not a scalar");
  if (H5Tis_variable_str(type.get()) > 0) {
    if (!variable_ok)
      throw InputError(file, where + ": attribute '" + name + "' is a variable-length string (this atlas version " +
                                 "stores fixed-length strings)");
    Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    char* ptr = nullptr;
    check_status(H5Aread(attr.get(), mem.get(), &ptr), file, where + ": cannot read attribute " + name);
    std::string value = ptr ? ptr : "";
    H5free_memory(ptr);
    return value;
  }
  size_t size = H5Tget_size(type.get());
  if (size > (1u << 20)) throw InputError(file, where + ": attribute '" + name + "' is implausibly long");
  std::string buf(size, '\0');
  Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.get(), size);
  H5Tset_cset(mem.get(), H5Tget_cset(type.get()));  // HDF5 converts between character sets not at all
  H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
  check_status(H5Aread(attr.get(), mem.get(), buf.data()), file, where + ": cannot read attribute " + name);
  size_t end = buf.find('\0');
  return end == std::string::npos ? buf : buf.substr(0, end);
}

int64_t read_int_attr(hid_t obj, const char* name, const std::string& file, const std::string& where) {
  if (!has_attr(obj, name)) throw InputError(file, where + ": missing attribute '" + name + "'");
  Hid attr = checked(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose, file, where + ": cannot open attribute " + name);
  Hid type = checked(H5Aget_type(attr.get()), H5Tclose, file, where + ": bad attribute " + name);
  Hid space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Sget_simple_extent_npoints(space.get()) != 1)
    throw InputError(file, where + ": attribute '" + name + "' is not an integer scalar");
  int64_t value = 0;
  check_status(H5Aread(attr.get(), H5T_NATIVE_INT64, &value), file, where + ": cannot read attribute " + name);
  return value;
}

// Opens a dataset (InputError naming it when missing or unopenable) and reads its shape.
Hid open_dataset(hid_t parent, const std::string& name, const std::string& file, const std::string& where,
                 std::vector<hsize_t>* dims) {
  if (H5Lexists(parent, name.c_str(), H5P_DEFAULT) <= 0)
    throw InputError(file, where + ": missing dataset '" + name + "'");
  Hid ds = checked(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose, file,
                   where + ": cannot open dataset '" + name + "'");
  Hid space(H5Dget_space(ds.get()), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  dims->assign(rank > 0 ? rank : 0, 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims->data(), nullptr);
  return ds;
}

// Opens a dataset, checks its shape is exactly `expected` and, for contiguous storage, that the
// file really holds its bytes, before the caller allocates anything.
Hid open_checked_dataset(hid_t parent, const std::string& name, const std::vector<hsize_t>& expected,
                         const std::string& file, const std::string& where) {
  std::vector<hsize_t> dims;
  Hid ds = open_dataset(parent, name, file, where, &dims);
  if (dims != expected) {
    auto str = [](const std::vector<hsize_t>& d) {
      std::string s = "[";
      for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
      return s + "]";
    };
    throw InputError(file, where + "/" + name + ": shape " + str(dims) + ", expected " + str(expected));
  }
  hsize_t count = 1;
  for (hsize_t d : dims) count *= d;
  Hid dcpl(H5Dget_create_plist(ds.get()), H5Pclose);
  if (count > 0 && H5Pget_layout(dcpl.get()) == H5D_CONTIGUOUS) {
    haddr_t offset = H5Dget_offset(ds.get());
    hsize_t file_size = 0;
    hid_t fid = H5Iget_file_id(ds.get());  // a new reference, released right away
    if (fid >= 0) {
      H5Fget_filesize(fid, &file_size);
      H5Fclose(fid);
    }
    Hid ftype(H5Dget_type(ds.get()), H5Tclose);
    double need = static_cast<double>(count) * static_cast<double>(H5Tget_size(ftype.get()));
    if (offset == HADDR_UNDEF || static_cast<double>(offset) + need > static_cast<double>(file_size))
      throw InputError(file, where + "/" + name + ": the file is truncated (dataset needs " +
                                 std::to_string(static_cast<long long>(need)) + " bytes past offset " +
                                 std::to_string(static_cast<long long>(offset)) + ", file has " +
                                 std::to_string(static_cast<long long>(file_size)) + ")");
  }
  return ds;
}

// Index datasets (token ids, layer numbers) must be stored as integers: HDF5 would otherwise
// convert floats on read without a word.
void require_integer_dataset(hid_t ds, const std::string& file, const std::string& what) {
  Hid type(H5Dget_type(ds), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER) throw InputError(file, what + ": not stored as integers");
}

std::vector<hsize_t> dataset_dims(hid_t parent, const std::string& name, const std::string& file,
                                  const std::string& where) {
  std::vector<hsize_t> dims;
  open_dataset(parent, name, file, where, &dims);
  return dims;
}

template <typename T>
std::vector<T> read_full(hid_t ds, hid_t mem_type, size_t count, const std::string& file, const std::string& what) {
  std::vector<T> out(count);
  if (count > 0)
    check_status(H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), file, "cannot read " + what);
  return out;
}

}  // namespace

std::string atlas_prompt_group(size_t prompt) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "prompt_%02zu", prompt);
  return buf;
}

int64_t atlas_statistics_bytes(int64_t layers, int64_t heads, const std::vector<int64_t>& prompt_tokens,
                               int64_t map_size) {
  int64_t per_head = 0;  // over the prompts, for one layer
  for (int64_t n : prompt_tokens) {
    const int64_t m = std::min(map_size, n);
    per_head += 2 * n * static_cast<int64_t>(sizeof(float)) + m * m * static_cast<int64_t>(sizeof(float));
  }
  return layers * heads * per_head;
}

std::string atlas_layer_group(int64_t layer) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "layer_%02lld", static_cast<long long>(layer));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Writer

struct AtlasWriter::Impl {
  std::string tmp_path;
  AtlasMeta meta;
  std::vector<AtlasPrompt> prompts;  // tokens released once written
  std::vector<int64_t> prompt_tokens;  // N per prompt
  Hid file;
  size_t current_prompt = 0;
  std::vector<std::vector<int32_t>> layers_written;  // [prompt]
  bool finalized = false;
};

namespace {

void check_prompts(const std::vector<AtlasPrompt>& prompts, const AtlasMeta& meta, const std::string& path) {
  if (prompts.empty()) throw InputError(path, "an atlas needs at least one prompt");
  if (static_cast<int64_t>(prompts.size()) > kMaxPrompts)
    throw InputError(path, std::to_string(prompts.size()) + " prompts is more than " + std::to_string(kMaxPrompts));
  int64_t longest = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const AtlasPrompt& pr = prompts[p];
    const std::string where = atlas_prompt_group(p) + " (" + pr.name + ")";
    if (pr.name.empty()) throw InputError(path, where + ": empty name");
    for (size_t q = 0; q < p; ++q)
      if (prompts[q].name == pr.name) throw InputError(path, where + ": the name is used twice");
    if (!std::isfinite(pr.weight) || !(pr.weight > 0)) throw InputError(path, where + ": weight must be > 0");
    const int64_t n = static_cast<int64_t>(pr.tokens.size());
    if (n < 1 || n > kMaxTokens) throw InputError(path, where + ": " + std::to_string(n) + " tokens");
    longest = std::max(longest, n);
  }
  if (longest != meta.tokens)
    throw InputError(path, "meta tokens = " + std::to_string(meta.tokens) + " but the longest prompt has " +
                               std::to_string(longest) + " tokens");
}

void write_prompt_group(hid_t f, size_t p, const AtlasPrompt& pr, const std::string& path) {
  const std::string name = atlas_prompt_group(p);
  Hid g = checked(H5Gcreate2(f, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, path,
                  "cannot create /" + name);
  write_string_attr(g.get(), "name", pr.name, path);
  write_string_attr(g.get(), "description", pr.description, path);
  write_string_attr(g.get(), "sha256", pr.sha256, path);
  write_double_attr(g.get(), "weight", pr.weight, path);
  write_int_attr(g.get(), "tokens", static_cast<int64_t>(pr.tokens.size()), path);
  write_int_attr(g.get(), "map_size", pr.map_size, path);
  write_dataset(g.get(), "tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, {static_cast<hsize_t>(pr.tokens.size())},
                pr.tokens.data(), path);
}

}  // namespace

AtlasWriter::AtlasWriter(const std::string& path, const AtlasMeta& meta, const std::vector<int32_t>& tokens)
    : AtlasWriter(path, meta, std::vector<AtlasPrompt>{{"prompt", meta.prompt_description, meta.prompt_sha256, 1.0, 0, tokens}}) {}

AtlasWriter::AtlasWriter(const std::string& path, const AtlasMeta& meta, std::vector<AtlasPrompt> prompts)
    : impl_(std::make_unique<Impl>()), path_(path) {
  silence_hdf5_errors();
  validate_meta(meta, path);
  check_prompts(prompts, meta, path);
  for (AtlasPrompt& pr : prompts) {
    const int64_t n = static_cast<int64_t>(pr.tokens.size());
    if (pr.map_size <= 0) pr.map_size = std::min(meta.map_size, n);
    if (pr.map_size > std::min(meta.map_size, n))
      throw InputError(path, "prompt " + pr.name + ": map_size " + std::to_string(pr.map_size) +
                                 " is larger than min(meta map_size, N)");
  }
  impl_->meta = meta;
  impl_->tmp_path = temp_path_for(path);
  impl_->file = checked(H5Fcreate(impl_->tmp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                        path, "cannot create atlas file (temporary " + impl_->tmp_path + ")");
  hid_t f = impl_->file.get();
  write_string_attr(f, "format", kAtlasFormat, path);
  write_int_attr(f, "version", kAtlasVersion, path);

  Hid g = checked(H5Gcreate2(f, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, path,
                  "cannot create /meta");
  write_string_attr(g.get(), "model_fingerprint", meta.model_fingerprint, path);
  write_string_attr(g.get(), "model_name", meta.model_name, path);
  write_string_attr(g.get(), "model_file", meta.model_file, path);
  write_string_attr(g.get(), "arch", meta.arch, path);
  write_int_attr(g.get(), "layers", meta.layers, path);
  write_int_attr(g.get(), "heads", meta.heads, path);
  write_int_attr(g.get(), "kv_heads", meta.kv_heads, path);
  write_int_attr(g.get(), "head_dim", meta.head_dim, path);
  write_int_attr(g.get(), "tokens", meta.tokens, path);
  write_string_attr(g.get(), "prompt_sha256", meta.prompt_sha256, path);
  write_string_attr(g.get(), "prompt_description", meta.prompt_description, path);
  write_string_attr(g.get(), "tool_version", meta.tool_version, path);
  write_int_attr(g.get(), "block_size", meta.block_size, path);
  write_int_attr(g.get(), "last_q", meta.last_q, path);
  write_int_attr(g.get(), "v_sink", meta.v_sink, path);
  write_int_attr(g.get(), "s_local", meta.s_local, path);
  write_int_attr(g.get(), "map_size", meta.map_size, path);
  write_int_attr(g.get(), "statistics", meta.statistics, path);

  for (size_t p = 0; p < prompts.size(); ++p) {
    write_prompt_group(f, p, prompts[p], path);
    impl_->prompt_tokens.push_back(static_cast<int64_t>(prompts[p].tokens.size()));
    prompts[p].tokens = {};  // on disk now; the writer keeps only the counts
  }
  impl_->prompts = std::move(prompts);
  impl_->layers_written.resize(impl_->prompts.size());
}

AtlasWriter::~AtlasWriter() {
  if (impl_ && !impl_->finalized) {
    impl_->file.reset();
    std::error_code ec;
    fs::remove(impl_->tmp_path, ec);
  }
  if (impl_) release_temp_path(impl_->tmp_path);
}

void AtlasWriter::write_layer(const AtlasLayer& layer, size_t prompt) {
  if (impl_->finalized) throw Error("internal error: AtlasWriter::write_layer after finalize");
  const AtlasMeta& m = impl_->meta;
  const std::string where = atlas_prompt_group(prompt) + "/" + atlas_layer_group(layer.layer);
  auto fail = [&](const std::string& what) { throw InputError(path_, where + ": " + what); };
  if (prompt >= impl_->prompts.size()) fail("no such prompt");
  if (prompt < impl_->current_prompt) fail("prompts must be written in order");
  impl_->current_prompt = prompt;
  std::vector<int32_t>& written = impl_->layers_written[prompt];
  if (layer.layer < 0 || layer.layer >= m.layers) fail("layer index outside the model's layers");
  if (!written.empty() && layer.layer <= written.back()) fail("layers must be written once each, in ascending order");
  const int64_t n = impl_->prompt_tokens[prompt], msize = impl_->prompts[prompt].map_size;
  const size_t hn = static_cast<size_t>(m.heads * n);
  const size_t hmm = static_cast<size_t>(m.heads * msize * msize);
  if (m.statistics != 0) {
    if (layer.colmass.size() != hn) fail("colmass has " + std::to_string(layer.colmass.size()) + " values, expected H*N");
    if (layer.diagmass.size() != hn)
      fail("diagmass has " + std::to_string(layer.diagmass.size()) + " values, expected H*N");
    if (layer.map.size() != hmm) fail("map has " + std::to_string(layer.map.size()) + " values, expected H*M*M");
  } else if (!layer.colmass.empty() || !layer.diagmass.empty() || !layer.map.empty()) {
    fail("statistics given for an atlas recorded without them (meta statistics = 0)");
  }
  if (static_cast<int64_t>(layer.candidates.size()) > kMaxCandidateRows) fail("too many candidate rows");
  std::vector<DiskRow> rows;  // [R]
  rows.reserve(layer.candidates.size());
  for (const CandidateRow& r : layer.candidates) {
    std::string problem = row_problem(r, m.heads);
    if (!problem.empty()) fail("candidate row: " + problem);
    rows.push_back({r.head, static_cast<int32_t>(r.pattern), r.p1, r.p2, r.cost, r.density, r.recall, r.out_err});
  }

  Hid pg = checked(H5Gopen2(impl_->file.get(), atlas_prompt_group(prompt).c_str(), H5P_DEFAULT), H5Gclose, path_,
                   "cannot open /" + atlas_prompt_group(prompt));
  const std::string name = atlas_layer_group(layer.layer);
  Hid g = checked(H5Gcreate2(pg.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, path_,
                  "cannot create /" + where);
  write_int_attr(g.get(), "layer", layer.layer, path_);
  const hsize_t H = m.heads, N = n, M = msize;
  if (m.statistics != 0) {
    write_dataset(g.get(), "colmass", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {H, N}, layer.colmass.data(), path_);
    write_dataset(g.get(), "diagmass", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {H, N}, layer.diagmass.data(), path_);
    write_dataset(g.get(), "map", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {H, M, M}, layer.map.data(), path_);
  }
  Hid row_type = candidate_row_type();
  write_dataset(g.get(), "candidates", row_type.get(), row_type.get(), {static_cast<hsize_t>(rows.size())},
                rows.data(), path_);
  // Push to disk now: a crash later in the run should not cost the layers already recorded
  // more than the rename that never happens.
  H5Fflush(impl_->file.get(), H5F_SCOPE_LOCAL);
  written.push_back(static_cast<int32_t>(layer.layer));
}

void AtlasWriter::finalize() {
  if (impl_->finalized) return;
  const std::vector<int32_t>& layers = impl_->layers_written.front();
  if (layers.empty()) throw InputError(path_, "no layer was recorded");
  for (size_t p = 1; p < impl_->layers_written.size(); ++p)
    if (impl_->layers_written[p] != layers)
      throw InputError(path_, atlas_prompt_group(p) + ": its recorded layers differ from the first prompt's");
  write_dataset(impl_->file.get(), "recorded_layers", H5T_STD_I32LE, H5T_NATIVE_INT32,
                {static_cast<hsize_t>(layers.size())}, layers.data(), path_);
  if (H5Fclose(impl_->file.release()) < 0) throw InputError(path_, "cannot close atlas file");
  std::error_code ec;
  fs::rename(impl_->tmp_path, path_, ec);
  if (ec) {
    fs::remove(impl_->tmp_path, ec);
    throw InputError(path_, "cannot rename the finished atlas into place");
  }
  impl_->finalized = true;
}

// ---------------------------------------------------------------------------------------------
// Reader

Atlas::Atlas(Atlas&&) noexcept = default;
Atlas& Atlas::operator=(Atlas&&) noexcept = default;
Atlas::~Atlas() = default;

namespace {

Hid open_file(const std::string& path) {
  silence_hdf5_errors();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw InputError(path, "no such atlas file");
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(path, "not an HDF5 file (expected a headcal atlas)");
  return checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, path, "cannot open HDF5 file");
}

Hid open_group(hid_t file, const std::string& name, const std::string& path) {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0) throw InputError(path, "missing group /" + name);
  return checked(H5Gopen2(file, name.c_str(), H5P_DEFAULT), H5Gclose, path, "cannot open group /" + name);
}

std::vector<CandidateRow> read_candidates(hid_t group, const AtlasMeta& meta, const std::string& path,
                                          const std::string& where) {
  std::vector<hsize_t> dims = dataset_dims(group, "candidates", path, where);
  if (dims.size() != 1) throw InputError(path, where + "/candidates: expected a 1-D table");
  if (static_cast<int64_t>(dims[0]) > kMaxCandidateRows)
    throw InputError(path, where + "/candidates: " + std::to_string(dims[0]) + " rows is implausible");
  Hid ds = open_checked_dataset(group, "candidates", dims, path, where);
  Hid ftype(H5Dget_type(ds.get()), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_COMPOUND)
    throw InputError(path, where + "/candidates: not a compound table");
  for (const char* field : {"head", "pattern", "p1", "p2", "cost", "density", "recall", "out_err"})
    if (H5Tget_member_index(ftype.get(), field) < 0)
      throw InputError(path, where + "/candidates: missing field '" + field + "'");
  Hid row_type = candidate_row_type();
  std::vector<DiskRow> disk = read_full<DiskRow>(ds.get(), row_type.get(), dims[0], path, where + "/candidates");
  std::vector<CandidateRow> rows;
  rows.reserve(disk.size());
  for (size_t i = 0; i < disk.size(); ++i) {
    const DiskRow& d = disk[i];
    CandidateRow r{d.head, static_cast<Pattern>(d.pattern), d.p1, d.p2, d.cost, d.density, d.recall, d.out_err};
    std::string problem = row_problem(r, meta.heads);
    if (problem.empty()) problem = candidate_problem(r.candidate(), meta.defaults());
    if (!problem.empty()) throw InputError(path, where + "/candidates row " + std::to_string(i) + ": " + problem);
    rows.push_back(r);
  }
  return rows;
}

}  // namespace

namespace {

double read_double_attr(hid_t obj, const char* name, const std::string& file, const std::string& where) {
  if (!has_attr(obj, name)) throw InputError(file, where + ": missing attribute '" + name + "'");
  Hid attr = checked(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose, file, where + ": cannot open attribute " + name);
  Hid type = checked(H5Aget_type(attr.get()), H5Tclose, file, where + ": bad attribute " + name);
  Hid space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Tget_class(type.get()) != H5T_FLOAT || H5Sget_simple_extent_npoints(space.get()) != 1)
    throw InputError(file, where + ": attribute '" + name + "' is not a floating-point scalar");
  double value = 0;
  check_status(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value), file, where + ": cannot read attribute " + name);
  return value;
}

// The group a prompt's tokens and layers live in: the root for version 1, /prompt_PP for 2.
std::string prompt_prefix(int64_t version, size_t p) { return version == 1 ? "" : atlas_prompt_group(p); }

Hid open_prompt_group(hid_t file, int64_t version, size_t p, const std::string& path) {
  if (version == 1) return checked(H5Gopen2(file, "/", H5P_DEFAULT), H5Gclose, path, "cannot open /");
  return open_group(file, atlas_prompt_group(p), path);
}

// Counts /prompt_00, /prompt_01, ... up to the first one missing.
size_t count_prompt_groups(hid_t file) {
  size_t n = 0;
  while (static_cast<int64_t>(n) <= kMaxPrompts && H5Lexists(file, atlas_prompt_group(n).c_str(), H5P_DEFAULT) > 0) ++n;
  return n;
}

}  // namespace

Atlas Atlas::open(const std::string& path) {
  Hid file = open_file(path);
  hid_t f = file.get();
  Atlas a;
  a.path_ = path;
  a.version_ = read_int_attr(f, "version", path, "/");
  if (a.version_ != 1 && a.version_ != kAtlasVersion)
    throw InputError(path, "atlas version " + std::to_string(a.version_) + " is not supported (this headcal reads versions 1 and " +
                               std::to_string(kAtlasVersion) + ")");
  const bool v1 = a.version_ == 1;
  std::string format = read_string_attr(f, "format", path, "/", v1);
  if (format != kAtlasFormat) throw InputError(path, "format is '" + format + "', expected '" + kAtlasFormat + "'");

  Hid g = open_group(f, "meta", path);
  AtlasMeta& m = a.meta_;
  m.model_fingerprint = read_string_attr(g.get(), "model_fingerprint", path, "/meta", v1);
  m.model_name = read_string_attr(g.get(), "model_name", path, "/meta", v1);
  if (has_attr(g.get(), "model_file")) m.model_file = read_string_attr(g.get(), "model_file", path, "/meta", v1);
  m.arch = read_string_attr(g.get(), "arch", path, "/meta", v1);
  m.layers = read_int_attr(g.get(), "layers", path, "/meta");
  m.heads = read_int_attr(g.get(), "heads", path, "/meta");
  m.kv_heads = read_int_attr(g.get(), "kv_heads", path, "/meta");
  m.head_dim = read_int_attr(g.get(), "head_dim", path, "/meta");
  m.tokens = read_int_attr(g.get(), "tokens", path, "/meta");
  m.prompt_sha256 = read_string_attr(g.get(), "prompt_sha256", path, "/meta", v1);
  m.prompt_description = read_string_attr(g.get(), "prompt_description", path, "/meta", v1);
  m.tool_version = read_string_attr(g.get(), "tool_version", path, "/meta", v1);
  m.block_size = read_int_attr(g.get(), "block_size", path, "/meta");
  m.last_q = read_int_attr(g.get(), "last_q", path, "/meta");
  m.v_sink = read_int_attr(g.get(), "v_sink", path, "/meta");
  m.s_local = read_int_attr(g.get(), "s_local", path, "/meta");
  m.map_size = read_int_attr(g.get(), "map_size", path, "/meta");
  if (has_attr(g.get(), "statistics")) m.statistics = read_int_attr(g.get(), "statistics", path, "/meta");
  validate_meta(m, path);

  const size_t prompts = a.version_ == 1 ? 1 : count_prompt_groups(f);
  if (prompts == 0) throw InputError(path, "no prompt group (/prompt_00)");
  if (static_cast<int64_t>(prompts) > kMaxPrompts) throw InputError(path, "more than " + std::to_string(kMaxPrompts) + " prompts");
  int64_t longest = 0;
  for (size_t p = 0; p < prompts; ++p) {
    AtlasPrompt pr;
    const std::string where = "/" + prompt_prefix(a.version_, p);
    Hid pg = open_prompt_group(f, a.version_, p, path);
    if (a.version_ == 1) {
      pr = {"prompt", m.prompt_description, m.prompt_sha256, 1.0, m.map_size, {}};
      pr.tokens.resize(static_cast<size_t>(m.tokens));
    } else {
      pr.name = read_string_attr(pg.get(), "name", path, where, v1);
      pr.description = read_string_attr(pg.get(), "description", path, where, v1);
      pr.sha256 = read_string_attr(pg.get(), "sha256", path, where, v1);
      pr.weight = read_double_attr(pg.get(), "weight", path, where);
      if (!std::isfinite(pr.weight) || !(pr.weight > 0)) throw InputError(path, where + ": weight must be > 0");
      const int64_t n = read_int_attr(pg.get(), "tokens", path, where);
      if (n < 1 || n > m.tokens)
        throw InputError(path, where + ": tokens = " + std::to_string(n) + " is outside [1, meta tokens = " +
                                   std::to_string(m.tokens) + "]");
      pr.map_size = read_int_attr(pg.get(), "map_size", path, where);
      if (pr.map_size < 1 || pr.map_size > std::min(m.map_size, n))
        throw InputError(path, where + ": map_size = " + std::to_string(pr.map_size) + " is outside [1, min(meta map_size, N)]");
      for (size_t q = 0; q < p; ++q)
        if (a.prompts_[q].name == pr.name) throw InputError(path, where + ": the prompt name '" + pr.name + "' is used twice");
      pr.tokens.resize(static_cast<size_t>(n));
    }
    const hsize_t n = pr.tokens.size();
    Hid ds = open_checked_dataset(pg.get(), "tokens", {n}, path, where);
    require_integer_dataset(ds.get(), path, where + "/tokens");
    pr.tokens = read_full<int32_t>(ds.get(), H5T_NATIVE_INT32, n, path, where + "/tokens");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(n));
    a.prompts_.push_back(std::move(pr));
  }
  if (longest != m.tokens)
    throw InputError(path, "meta tokens = " + std::to_string(m.tokens) + " but the longest prompt has " +
                               std::to_string(longest));

  std::vector<hsize_t> ldims = dataset_dims(f, "recorded_layers", path, "/");
  if (ldims.size() != 1 || ldims[0] < 1 || static_cast<int64_t>(ldims[0]) > m.layers)
    throw InputError(path, "/recorded_layers: expected between 1 and " + std::to_string(m.layers) + " layers");
  std::vector<int32_t> layers;
  {
    Hid ds = open_checked_dataset(f, "recorded_layers", ldims, path, "/");
    require_integer_dataset(ds.get(), path, "/recorded_layers");
    layers = read_full<int32_t>(ds.get(), H5T_NATIVE_INT32, ldims[0], path, "/recorded_layers");
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] < 0 || layers[i] >= m.layers || (i > 0 && layers[i] <= layers[i - 1]))
      throw InputError(path, "/recorded_layers: must be ascending layer indices in [0, " + std::to_string(m.layers) + ")");
    a.layers_.push_back(layers[i]);
  }
  a.candidates_.resize(prompts);
  for (size_t p = 0; p < prompts; ++p) {
    Hid pg = open_prompt_group(f, a.version_, p, path);
    const std::string prefix = prompt_prefix(a.version_, p);
    for (int64_t layer : a.layers_) {
      const std::string name = atlas_layer_group(layer);
      Hid lg = open_group(pg.get(), name, path);
      a.candidates_[p].push_back(read_candidates(lg.get(), m, path, "/" + (prefix.empty() ? name : prefix + "/" + name)));
    }
  }
  return a;
}

bool Atlas::has_layer(int64_t layer) const {
  for (int64_t l : layers_)
    if (l == layer) return true;
  return false;
}

const std::vector<CandidateRow>& Atlas::candidates(int64_t layer, size_t prompt) const {
  if (prompt >= prompts_.size())
    throw InputError(path_, "prompt " + std::to_string(prompt) + " is not in the atlas (" +
                                std::to_string(prompts_.size()) + " prompts)");
  for (size_t i = 0; i < layers_.size(); ++i)
    if (layers_[i] == layer) return candidates_[prompt][i];
  throw InputError(path_, "layer " + std::to_string(layer) + " was not recorded");
}

AtlasLayer Atlas::read_layer(int64_t layer, size_t prompt) const {
  AtlasLayer out;
  out.layer = layer;
  out.candidates = candidates(layer, prompt);
  Hid file = open_file(path_);
  Hid pg = open_prompt_group(file.get(), version_, prompt, path_);
  const std::string name = atlas_layer_group(layer);
  const std::string prefix = prompt_prefix(version_, prompt);
  const std::string where = "/" + (prefix.empty() ? name : prefix + "/" + name);
  if (meta_.statistics == 0) return out;  // recorded without statistics: the candidates only
  Hid g = open_group(pg.get(), name, path_);
  const AtlasPrompt& pr = prompts_[prompt];
  const hsize_t H = meta_.heads, N = pr.tokens.size(), M = pr.map_size;
  {
    Hid ds = open_checked_dataset(g.get(), "colmass", {H, N}, path_, where);
    out.colmass = read_full<float>(ds.get(), H5T_NATIVE_FLOAT, H * N, path_, where + "/colmass");
  }
  {
    Hid ds = open_checked_dataset(g.get(), "diagmass", {H, N}, path_, where);
    out.diagmass = read_full<float>(ds.get(), H5T_NATIVE_FLOAT, H * N, path_, where + "/diagmass");
  }
  {
    Hid ds = open_checked_dataset(g.get(), "map", {H, M, M}, path_, where);
    out.map = read_full<float>(ds.get(), H5T_NATIVE_FLOAT, H * M * M, path_, where + "/map");
  }
  return out;
}

}  // namespace hc
