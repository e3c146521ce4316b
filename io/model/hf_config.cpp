#include "io/model/hf_config.h"

#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/util/mapped_file.h"

namespace hc {

namespace {

using json = nlohmann::json;

std::string one_line(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return s;
}

std::string shorten(const std::string& s, size_t max_chars = 80) {
  return s.size() <= max_chars ? s : s.substr(0, max_chars - 3) + "...";
}

json parse_json(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // also out_of_range: a number beyond double
    std::string msg = e.what();
    if (auto p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
    throw InputError(source, "malformed JSON: " + one_line(msg));
  }
}

// Typed field access with errors that name the field and show the offending value.
class Fields {
 public:
  Fields(const json& j, const std::string& source) : j_(j), source_(source) {}

  bool present(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }

  int64_t integer(const std::string& key) const {
    if (!present(key)) throw InputError(source_, "missing field \"" + key + "\"");
    return as_integer(j_[key], key);
  }
  int64_t integer_or(const std::string& key, int64_t fallback) const {
    return present(key) ? as_integer(j_[key], key) : fallback;
  }
  double number_or(const std::string& key, double fallback) const {
    return present(key) ? as_number(j_[key], key) : fallback;
  }
  bool boolean_or(const std::string& key, bool fallback) const {
    if (!present(key)) return fallback;
    if (!j_[key].is_boolean())
      throw InputError(source_, "field \"" + key + "\" must be true or false, got " + shorten(one_line(j_[key].dump())));
    return j_[key].get<bool>();
  }
  std::string string_or(const std::string& key, const std::string& fallback) const {
    if (!present(key)) return fallback;
    if (!j_[key].is_string())
      throw InputError(source_, "field \"" + key + "\" must be a string, got " + shorten(one_line(j_[key].dump())));
    return j_[key].get<std::string>();
  }
  // bos/eos ids: an integer, a list of integers (the first is taken), or null/absent (-1).
  int64_t token_id(const std::string& key) const {
    if (!present(key)) return -1;
    const json& v = j_[key];
    if (v.is_array()) return v.empty() ? -1 : as_integer(v[0], key + "[0]");
    return as_integer(v, key);
  }

  int64_t as_integer(const json& v, const std::string& key) const {
    if (v.is_number_integer() || v.is_number_unsigned()) {
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        throw InputError(source_, "field \"" + key + "\" is out of range: " + v.dump());
      return v.get<int64_t>();
    }
    throw InputError(source_, "field \"" + key + "\" must be an integer, got " + shorten(one_line(v.dump())));
  }
  double as_number(const json& v, const std::string& key) const {
    if (v.is_number()) return v.get<double>();
    throw InputError(source_, "field \"" + key + "\" must be a number, got " + shorten(one_line(v.dump())));
  }

 private:
  const json& j_;
  const std::string& source_;
};

// What parse_rope_scaling needs from outside the rope object.
struct RopeContext {
  std::string arch;
  int64_t max_context = 0;           // max_position_embeddings
  int64_t original_max_top = -1;     // top-level original_max_position_embeddings (-1: absent)
};

// A list of numbers (longrope's short_factor / long_factor).
std::vector<double> number_list(const json& rs, const std::string& key, const std::string& field,
                                const std::string& type, const std::string& source) {
  if (!rs.contains(key) || rs[key].is_null())
    throw InputError(source, "field \"" + field + "\" of type " + type + " is missing \"" + key + "\"");
  const json& v = rs[key];
  if (!v.is_array())
    throw InputError(source, "field \"" + field + "." + key + "\" must be a list of numbers, got " +
                                 shorten(one_line(v.dump())));
  std::vector<double> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number())
      throw InputError(source, "field \"" + field + "." + key + "[" + std::to_string(i) + "]\" must be a number, got " +
                                   shorten(one_line(v[i].dump())));
    out.push_back(v[i].get<double>());
  }
  return out;
}

// rope_scaling (transformers <= 4.x) or rope_parameters (5.x); "type" is the older key for "rope_type".
RopeScaling parse_rope_scaling(const json& rs, const std::string& source, const std::string& field,
                               const RopeContext& ctx) {
  RopeScaling out;
  if (rs.is_null()) return out;
  if (!rs.is_object())
    throw InputError(source, "field \"" + field + "\" must be an object or null, got " + shorten(one_line(rs.dump())));
  Fields f(rs, source);
  std::string type = f.string_or("rope_type", f.string_or("type", "default"));
  // Phi3Config reads the older names "su" and "yarn" as longrope.
  if (ctx.arch == "phi3" && (type == "su" || type == "yarn")) type = "longrope";
  auto need = [&](const std::string& key) {
    if (!f.present(key))
      throw InputError(source, "field \"" + field + "\" of type " + type + " is missing \"" + key + "\"");
    return f.as_number(rs[key], field + "." + key);
  };
  if (type == "default") return out;
  if (type == "linear") {
    out.type = RopeScalingType::Linear;
    out.factor = need("factor");
    return out;
  }
  if (type == "llama3") {
    out.type = RopeScalingType::Llama3;
    out.factor = need("factor");
    out.low_freq_factor = need("low_freq_factor");
    out.high_freq_factor = need("high_freq_factor");
    if (!f.present("original_max_position_embeddings"))
      throw InputError(source, "field \"" + field + "\" of type llama3 is missing \"original_max_position_embeddings\"");
    out.original_max_position =
        f.as_integer(rs["original_max_position_embeddings"], field + ".original_max_position_embeddings");
    return out;
  }
  if (type == "yarn") {
    out.type = RopeScalingType::Yarn;
    out.factor = need("factor");
    if (!f.present("original_max_position_embeddings"))
      throw InputError(source, "field \"" + field + "\" of type yarn is missing \"original_max_position_embeddings\"");
    out.original_max_position =
        f.as_integer(rs["original_max_position_embeddings"], field + ".original_max_position_embeddings");
    // transformers reads an absent, null or zero beta as its default (32 / 1).
    const double beta_fast = f.number_or("beta_fast", 0.0), beta_slow = f.number_or("beta_slow", 0.0);
    if (beta_fast != 0.0) out.beta_fast = beta_fast;
    if (beta_slow != 0.0) out.beta_slow = beta_slow;
    out.yarn_truncate = f.boolean_or("truncate", true);
    out.attention_factor = f.number_or("attention_factor", 0.0);
    out.mscale = f.number_or("mscale", 0.0);
    out.mscale_all_dim = f.number_or("mscale_all_dim", 0.0);
    return out;
  }
  if (type == "longrope") {
    // transformers' _compute_longrope_parameters after standardize_rope_params: a top-level
    // original_max_position_embeddings wins (Phi3Config always has one, default 4096), else the
    // rope object's, else max_position_embeddings; factor defaults to max / original.
    out.type = RopeScalingType::LongRope;
    out.short_factor = number_list(rs, "short_factor", field, type, source);
    out.long_factor = number_list(rs, "long_factor", field, type, source);
    if (ctx.original_max_top >= 0)
      out.original_max_position = ctx.original_max_top;
    else if (ctx.arch == "phi3")
      out.original_max_position = 4096;
    else if (f.present("original_max_position_embeddings"))
      out.original_max_position =
          f.as_integer(rs["original_max_position_embeddings"], field + ".original_max_position_embeddings");
    else
      out.original_max_position = ctx.max_context;
    if (out.original_max_position <= 0)
      throw InputError(source, "original_max_position_embeddings must be > 0 for longrope, got " +
                                   std::to_string(out.original_max_position));
    out.factor = f.present("factor") ? f.as_number(rs["factor"], field + ".factor")
                                     : double(ctx.max_context) / double(out.original_max_position);
    out.attention_factor = f.number_or("attention_factor", 0.0);
    return out;
  }
  throw InputError(source, "field \"" + field + "\": RoPE scaling type '" + one_line(type) +
                               "' is not supported (headcal supports none, linear, llama3, yarn and longrope)");
}

}  // namespace

ModelConfig parse_hf_config(const std::string& json_text, const std::string& source,
                            const std::string& fallback_name) {
  const json j = parse_json(json_text, source);
  if (!j.is_object()) throw InputError(source, "config.json is not a JSON object");
  Fields f(j, source);

  ModelConfig c;
  c.arch = f.string_or("model_type", "");
  if (c.arch.empty()) throw InputError(source, "missing field \"model_type\"");
  if (c.arch == "chatglm")
    throw InputError(source, "model_type 'chatglm' is THUDM's remote-code format; headcal reads GLM-4 in "
                             "transformers' format (model_type glm or glm4, e.g. the -hf repositories)");
  const bool glm = c.arch == "glm" || c.arch == "glm4";
  if (!is_supported_arch(c.arch))
    throw InputError(source, "model_type '" + one_line(c.arch) + "' is not supported (headcal runs " +
                                 supported_archs() + " models)");

  c.name = f.string_or("_name_or_path", "");
  if (c.name.empty()) c.name = fallback_name;

  c.n_layers = f.integer("num_hidden_layers");
  c.n_heads = f.integer("num_attention_heads");
  c.n_kv_heads = f.integer_or("num_key_value_heads", c.n_heads);
  c.hidden = f.integer("hidden_size");
  c.intermediate = f.integer("intermediate_size");
  c.vocab = f.integer("vocab_size");
  c.max_context = f.integer("max_position_embeddings");
  // transformers' LlamaConfig / MistralConfig / Qwen2Config / GlmConfig defaults when a field is absent.
  c.rms_eps = f.number_or("rms_norm_eps", glm ? 1.5625e-07 : 1e-6);

  if (f.present("head_dim")) {
    c.head_dim = f.integer("head_dim");
  } else if (glm) {
    c.head_dim = 128;  // GlmConfig's default, not hidden / heads
  } else {
    if (c.n_heads > 0 && c.hidden % c.n_heads != 0)
      throw InputError(source, "hidden_size " + std::to_string(c.hidden) + " is not divisible by num_attention_heads " +
                                   std::to_string(c.n_heads) + " and there is no \"head_dim\"");
    c.head_dim = c.n_heads > 0 ? c.hidden / c.n_heads : 0;
  }

  const json* rope_params = nullptr;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) rope_params = &j["rope_parameters"];
  if (f.present("rope_theta")) {
    c.rope_theta = f.number_or("rope_theta", 10000.0);
  } else if (rope_params && rope_params->contains("rope_theta")) {
    c.rope_theta = Fields(*rope_params, source).as_number((*rope_params)["rope_theta"], "rope_parameters.rope_theta");
  } else {
    c.rope_theta = 10000.0;
  }
  RopeContext rope_ctx;
  rope_ctx.arch = c.arch;
  rope_ctx.max_context = c.max_context;
  rope_ctx.original_max_top = f.integer_or("original_max_position_embeddings", -1);
  if (f.present("rope_scaling"))
    c.rope_scaling = parse_rope_scaling(j["rope_scaling"], source, "rope_scaling", rope_ctx);
  else if (rope_params)
    c.rope_scaling = parse_rope_scaling(*rope_params, source, "rope_parameters", rope_ctx);

  // Phi-3's and GLM's partial_rotary_factor: RoPE rotates the first int(head_dim * factor)
  // dimensions of each head. Phi3Config takes it from the rope object (rope_scaling, else
  // rope_parameters) before the top level; GlmConfig likewise, 0.5 when absent. GLM pairs the
  // rotated dimensions interleaved.
  if (c.arch == "phi3" || glm) {
    const bool scaling_object = f.present("rope_scaling") && j["rope_scaling"].is_object();
    const json* rope_obj = scaling_object ? &j["rope_scaling"] : rope_params;
    const std::string rope_field = scaling_object ? "rope_scaling" : "rope_parameters";
    const double absent = glm ? 0.5 : 1.0;
    double partial = absent;
    if (rope_obj && rope_obj->contains("partial_rotary_factor") && !(*rope_obj)["partial_rotary_factor"].is_null())
      partial = Fields(*rope_obj, source)
                    .as_number((*rope_obj)["partial_rotary_factor"], rope_field + ".partial_rotary_factor");
    else
      partial = f.number_or("partial_rotary_factor", absent);
    if (!(partial > 0.0 && partial <= 1.0))
      throw InputError(source, "field \"partial_rotary_factor\" must be in (0, 1], got " + std::to_string(partial));
    const int64_t rotary = static_cast<int64_t>(static_cast<double>(c.head_dim) * partial);  // Python's int()
    if (rotary < 2 || rotary % 2 != 0)
      throw InputError(source, "field \"partial_rotary_factor\": " + std::to_string(partial) + " of head_dim " +
                                   std::to_string(c.head_dim) + " rotates " + std::to_string(rotary) +
                                   " dimensions; RoPE needs an even number >= 2");
    if (rotary != c.head_dim) c.rotary_dim = rotary;
    c.rope_interleaved = glm;
  }

  c.tie_embeddings = f.boolean_or("tie_word_embeddings", false);
  c.bos_id = f.token_id("bos_token_id");
  c.eos_id = f.token_id("eos_token_id");

  // Qwen2 always has q/k/v biases; GLM has them unless attention_bias is false (its o_proj has
  // none). Llama's and Qwen3's attention_bias also puts a bias on o_proj (transformers'
  // LlamaAttention, Qwen3Attention), and mlp_bias on the MLP: the graph has neither, so those are
  // refused. GLM-4 (glm4) norms each block's output.
  c.qkv_bias = c.arch == "qwen2" || (glm && f.boolean_or("attention_bias", true));
  c.qk_norm = c.arch == "qwen3";
  c.post_norms = c.arch == "glm4";
  if (f.boolean_or("attention_bias", false) && c.arch != "qwen2" && !glm)
    throw InputError(source, "field \"attention_bias\": true adds q/k/v/o_proj biases; headcal supports "
                             "q/k/v biases (qwen2) but not an o_proj bias");
  if (f.boolean_or("mlp_bias", false))
    throw InputError(source, "field \"mlp_bias\": true is not supported (the MLP has no biases in headcal)");
  const std::string act = f.string_or("hidden_act", "silu");
  if (act != "silu")
    throw InputError(source, "field \"hidden_act\": activation '" + one_line(act) + "' is not supported (only silu)");

  // Sliding-window attention changes which keys a query sees; calibrating it as full causal
  // attention would describe a different model, so it is refused rather than ignored.
  if ((c.arch == "qwen2" || c.arch == "qwen3") && f.boolean_or("use_sliding_window", false))
    throw InputError(source, "field \"use_sliding_window\": true is not supported (headcal models full causal attention)");
  if ((c.arch == "mistral" || c.arch == "phi3") && f.present("sliding_window")) {
    int64_t window = f.integer("sliding_window");
    if (window < c.max_context)
      throw InputError(source, "field \"sliding_window\": " + std::to_string(window) +
                                   " is shorter than max_position_embeddings " + std::to_string(c.max_context) +
                                   "; sliding-window attention is not supported (headcal models full causal attention)");
  }

  c.validate(source);
  return c;
}

ModelConfig read_hf_config(const std::string& config_path, const std::string& fallback_name) {
  return parse_hf_config(read_whole_file(config_path), config_path, fallback_name);
}

std::vector<std::pair<std::string, std::string>> hf_config_fields(const std::string& json_text,
                                                                  const std::string& source) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(json_text);
  } catch (const nlohmann::ordered_json::exception&) {
    throw InputError(source, "malformed JSON");
  }
  std::vector<std::pair<std::string, std::string>> out;
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    out.emplace_back(it.key(), shorten(one_line(v.is_string() ? v.get<std::string>() : v.dump())));
  }
  return out;
}

}  // namespace hc
