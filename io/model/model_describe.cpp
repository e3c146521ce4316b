#include "io/model/model_describe.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "io/model/gguf.h"

namespace hc {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

// "134515008 (134.5M)"
std::string count_with_unit(int64_t n) {
  char buf[64];
  if (n >= 1000000000) std::snprintf(buf, sizeof(buf), "%lld (%.2fB)", (long long)n, n / 1e9);
  else if (n >= 1000000) std::snprintf(buf, sizeof(buf), "%lld (%.1fM)", (long long)n, n / 1e6);
  else if (n >= 1000) std::snprintf(buf, sizeof(buf), "%lld (%.1fK)", (long long)n, n / 1e3);
  else std::snprintf(buf, sizeof(buf), "%lld", (long long)n);
  return buf;
}

void line(std::ostringstream& out, const char* key, const std::string& value) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%-17s", (std::string(key) + ":").c_str());
  out << buf << value << "\n";
}

}  // namespace

std::string describe_rope_scaling(const RopeScaling& s) {
  switch (s.type) {
    case RopeScalingType::None: return "none";
    case RopeScalingType::Linear: return "linear (factor " + number(s.factor) + ")";
    case RopeScalingType::Llama3:
      return "llama3 (factor " + number(s.factor) + ", low_freq_factor " + number(s.low_freq_factor) +
             ", high_freq_factor " + number(s.high_freq_factor) + ", original " +
             std::to_string(s.original_max_position) + ")";
    case RopeScalingType::Yarn:
      return "yarn (factor " + number(s.factor) + ", original " + std::to_string(s.original_max_position) +
             ", beta_fast " + number(s.beta_fast) + ", beta_slow " + number(s.beta_slow) + ")";
    case RopeScalingType::LongRope:
      return "longrope (factor " + number(s.factor) + ", original " + std::to_string(s.original_max_position) +
             (s.attention_factor > 0 ? ", attention_factor " + number(s.attention_factor) : std::string()) + ", " +
             std::to_string(s.short_factor.size()) + " short / " + std::to_string(s.long_factor.size()) +
             " long factors)";
  }
  return "?";
}

std::string describe_model(const ModelFile& model, const DescribeOptions& options) {
  const ModelConfig& c = model.config();
  std::ostringstream out;
  std::string format = model.format();
  if (auto* g = dynamic_cast<const GgufFile*>(&model))
    format += " v" + std::to_string(g->version()) + ", alignment " + std::to_string(g->alignment());
  line(out, "file", model.path());
  line(out, "format", format);
  line(out, "arch", c.arch);
  line(out, "name", c.name);
  line(out, "layers", std::to_string(c.n_layers));
  line(out, "heads", std::to_string(c.n_heads));
  line(out, "kv heads", std::to_string(c.n_kv_heads) + " (GQA group " +
                            std::to_string(c.n_kv_heads > 0 ? c.n_heads / c.n_kv_heads : 0) + ")");
  line(out, "head_dim", std::to_string(c.head_dim) + (c.rotary_dims() != c.head_dim
                                                           ? " (RoPE on the first " + std::to_string(c.rotary_dims()) + ")"
                                                           : std::string()));
  line(out, "hidden", std::to_string(c.hidden));
  line(out, "intermediate", std::to_string(c.intermediate));
  line(out, "vocab", std::to_string(c.vocab));
  line(out, "context length", std::to_string(c.max_context));
  line(out, "rope theta", number(c.rope_theta));
  line(out, "rope scaling", describe_rope_scaling(c.rope_scaling));
  line(out, "rms eps", number(c.rms_eps));
  line(out, "qkv bias", c.qkv_bias ? "yes" : "no");
  line(out, "qk norm", c.qk_norm ? "yes" : "no");
  line(out, "rope pairs", c.rope_interleaved ? "interleaved (2t, 2t+1)" : "rotate-half (t, t+r/2)");
  line(out, "post norms", c.post_norms ? "yes (attention and MLP outputs)" : "no");
  line(out, "tied embeddings", c.tie_embeddings ? "yes" : "no");
  line(out, "bos / eos", std::to_string(c.bos_id) + " / " + std::to_string(c.eos_id));

  std::map<std::string, int64_t> dtype_counts;
  int64_t params = 0;
  for (const auto& [name, t] : model.tensors()) {
    ++dtype_counts[dtype_name(t.dtype)];
    params += t.numel();
  }
  std::string dtypes;
  for (const auto& [name, n] : dtype_counts) dtypes += (dtypes.empty() ? "" : ", ") + name + " " + std::to_string(n);
  line(out, "tensors", std::to_string(model.tensors().size()));
  line(out, "dtypes", dtypes);
  line(out, "parameters", count_with_unit(params));
  line(out, "fingerprint", model.fingerprint());

  if (options.metadata) {
    out << "\nmetadata:\n";
    for (const auto& [key, value] : model.metadata_summary()) out << "  " << key << " = " << value << "\n";
  }
  if (options.tensors) {
    out << "\ntensors (canonical name, dtype, shape" << (model.format() == "gguf" ? ", name in file" : "") << "):\n";
    for (const auto& [name, t] : model.tensors()) {
      out << "  " << name << "  " << dtype_name(t.dtype) << "  " << shape_string(t.shape);
      if (!t.file_name.empty() && t.file_name != name) out << "  (" << t.file_name << ")";
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace hc
