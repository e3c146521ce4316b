// config.json -> ModelConfig, and ModelConfig::validate.
#include <functional>
#include <string>

#include "catch.h"
#include "common/error.h"
#include "hf_test_helpers.h"
#include "io/model/hf_config.h"
#include "io/model/model_config.h"

namespace {

using hc::test::contains;
using hc::test::input_error_of;

const char* kSource = "/models/x/config.json";

hc::ModelConfig parse(const std::string& text) { return hc::parse_hf_config(text, kSource, "fallback-name"); }

std::string parse_error(const std::string& text) {
  return input_error_of([&] { parse(text); });
}

// A Llama body that tests extend; `extra` goes at the end of the object.
std::string llama(const std::string& extra = "", const std::string& type = "llama") {
  return R"({"model_type":")" + type + R"(","num_hidden_layers":30,"num_attention_heads":9,)"
         R"("num_key_value_heads":3,"hidden_size":576,"intermediate_size":1536,"vocab_size":49152,)"
         R"("max_position_embeddings":8192)" +
         (extra.empty() ? "" : "," + extra) + "}";
}

}  // namespace

TEST_CASE("SmolLM2's config.json", "[io][config]") {
  const std::string text = R"({
    "_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct", "architectures": ["LlamaForCausalLM"],
    "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 576, "initializer_range": 0.041, "intermediate_size": 1536,
    "is_llama_config": true, "max_position_embeddings": 8192, "mlp_bias": false, "model_type": "llama",
    "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3, "pad_token_id": 2,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": false, "rope_scaling": null,
    "rope_theta": 100000, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 49152})";
  hc::ModelConfig c = parse(text);
  CHECK(c.arch == "llama");
  CHECK(c.name == "HuggingFaceTB/SmolLM2-135M-Instruct");
  CHECK(c.n_layers == 30);
  CHECK(c.n_heads == 9);
  CHECK(c.n_kv_heads == 3);
  CHECK(c.head_dim == 64);
  CHECK(c.hidden == 576);
  CHECK(c.intermediate == 1536);
  CHECK(c.vocab == 49152);
  CHECK(c.max_context == 8192);
  CHECK(c.rms_eps == 1e-5);
  CHECK(c.rope_theta == 100000.0);  // an integer in the JSON
  CHECK(c.rope_scaling.type == hc::RopeScalingType::None);
  CHECK(c.tie_embeddings);
  CHECK_FALSE(c.qkv_bias);
  CHECK(c.bos_id == 1);
  CHECK(c.eos_id == 2);
}

TEST_CASE("defaults: kv heads = heads, transformers' eps/theta, name from the fallback", "[io][config]") {
  hc::ModelConfig c = parse(R"({"model_type":"llama","num_hidden_layers":2,"num_attention_heads":4,)"
                            R"("hidden_size":32,"intermediate_size":40,"vocab_size":64,"max_position_embeddings":128})");
  CHECK(c.n_kv_heads == 4);
  CHECK(c.head_dim == 8);
  CHECK(c.rms_eps == 1e-6);
  CHECK(c.rope_theta == 10000.0);
  CHECK_FALSE(c.tie_embeddings);
  CHECK(c.bos_id == -1);
  CHECK(c.eos_id == -1);
  CHECK(c.name == "fallback-name");
}

TEST_CASE("llama3 rope scaling (Llama 3.1 values)", "[io][config]") {
  hc::ModelConfig c = parse(llama(
      R"("rope_theta":500000.0,"rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,)"
      R"("original_max_position_embeddings":8192,"rope_type":"llama3"})"));
  CHECK(c.rope_scaling.type == hc::RopeScalingType::Llama3);
  CHECK(c.rope_scaling.factor == 8.0);
  CHECK(c.rope_scaling.low_freq_factor == 1.0);
  CHECK(c.rope_scaling.high_freq_factor == 4.0);
  CHECK(c.rope_scaling.original_max_position == 8192);
  CHECK(c.rope_theta == 500000.0);

  // The older key "type" and integer factors are accepted too.
  hc::ModelConfig old = parse(llama(R"("rope_scaling":{"type":"llama3","factor":32,"low_freq_factor":1,)"
                                    R"("high_freq_factor":4,"original_max_position_embeddings":4096})"));
  CHECK(old.rope_scaling.type == hc::RopeScalingType::Llama3);
  CHECK(old.rope_scaling.factor == 32.0);
  CHECK(old.rope_scaling.original_max_position == 4096);

  std::string msg = parse_error(llama(R"("rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,)"
                                      R"("high_freq_factor":4.0})"));
  CHECK(contains(msg, kSource));
  CHECK(contains(msg, "original_max_position_embeddings"));

  // high_freq_factor must exceed low_freq_factor (the rule divides by their difference).
  msg = parse_error(llama(R"("rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":4.0,)"
                          R"("high_freq_factor":4.0,"original_max_position_embeddings":8192})"));
  CHECK(contains(msg, "high_freq_factor"));
}

TEST_CASE("linear rope scaling; dynamic and unknown types are refused by name", "[io][config]") {
  hc::ModelConfig c = parse(llama(R"("rope_scaling":{"type":"linear","factor":4.0})"));
  CHECK(c.rope_scaling.type == hc::RopeScalingType::Linear);
  CHECK(c.rope_scaling.factor == 4.0);
  CHECK(parse(llama(R"("rope_scaling":{"rope_type":"default"})")).rope_scaling.type == hc::RopeScalingType::None);

  for (const char* type : {"dynamic", "yarn2"}) {
    std::string msg = parse_error(llama(std::string(R"("rope_scaling":{"rope_type":")") + type + R"(","factor":4.0})"));
    CHECK(contains(msg, kSource));
    CHECK(contains(msg, std::string("'") + type + "' is not supported"));
  }
  CHECK(contains(parse_error(llama(R"("rope_scaling":{"type":"linear"})")), "missing \"factor\""));
  CHECK(contains(parse_error(llama(R"("rope_scaling":"linear")")), "rope_scaling"));
}

TEST_CASE("yarn rope scaling (Qwen2.5 long-context values)", "[io][config]") {
  hc::ModelConfig c = parse(llama(R"("rope_scaling":{"type":"yarn","factor":4.0,)"
                                  R"("original_max_position_embeddings":32768})"));
  CHECK(c.rope_scaling.type == hc::RopeScalingType::Yarn);
  CHECK(c.rope_scaling.factor == 4.0);
  CHECK(c.rope_scaling.original_max_position == 32768);
  CHECK(c.rope_scaling.beta_fast == 32.0);  // transformers' defaults
  CHECK(c.rope_scaling.beta_slow == 1.0);
  CHECK(c.rope_scaling.yarn_truncate);
  CHECK(c.rope_scaling.attention_factor == 0.0);  // derived from factor

  hc::ModelConfig all = parse(llama(R"("rope_parameters":{"rope_type":"yarn","factor":8,"rope_theta":20000,)"
                                    R"("original_max_position_embeddings":4096,"beta_fast":16,"beta_slow":2,)"
                                    R"("truncate":false,"attention_factor":1.25,"mscale":0.5,"mscale_all_dim":0.25})"));
  CHECK(all.rope_scaling.type == hc::RopeScalingType::Yarn);
  CHECK(all.rope_scaling.factor == 8.0);
  CHECK(all.rope_scaling.original_max_position == 4096);
  CHECK(all.rope_scaling.beta_fast == 16.0);
  CHECK(all.rope_scaling.beta_slow == 2.0);
  CHECK_FALSE(all.rope_scaling.yarn_truncate);
  CHECK(all.rope_scaling.attention_factor == 1.25);
  CHECK(all.rope_scaling.mscale == 0.5);
  CHECK(all.rope_scaling.mscale_all_dim == 0.25);
  CHECK(all.rope_theta == 20000.0);

  // A null or zero beta is transformers' default, as there.
  hc::ModelConfig nulls = parse(llama(R"("rope_scaling":{"rope_type":"yarn","factor":2,"beta_fast":null,)"
                                      R"("beta_slow":0,"original_max_position_embeddings":64})"));
  CHECK(nulls.rope_scaling.beta_fast == 32.0);
  CHECK(nulls.rope_scaling.beta_slow == 1.0);

  std::string msg = parse_error(llama(R"("rope_scaling":{"rope_type":"yarn","factor":4.0})"));
  CHECK(contains(msg, kSource));
  CHECK(contains(msg, "rope_scaling"));
  CHECK(contains(msg, "original_max_position_embeddings"));
  msg = parse_error(llama(R"("rope_scaling":{"rope_type":"yarn","original_max_position_embeddings":64})"));
  CHECK(contains(msg, kSource));
  CHECK(contains(msg, "missing \"factor\""));
  msg = parse_error(llama(R"("rope_scaling":{"rope_type":"yarn","factor":4,"original_max_position_embeddings":64,)"
                          R"("attention_factor":-1})"));
  CHECK(contains(msg, kSource));
  CHECK(contains(msg, "attention_factor"));
  msg = parse_error(llama(R"("rope_scaling":{"rope_type":"yarn","factor":4,"original_max_position_embeddings":64,)"
                          R"("truncate":"yes"})"));
  CHECK(contains(msg, "truncate"));
}

TEST_CASE("transformers 5 rope_parameters", "[io][config]") {
  hc::ModelConfig c = parse(llama(R"("rope_parameters":{"rope_type":"default","rope_theta":1000000.0})"));
  CHECK(c.rope_theta == 1000000.0);
  CHECK(c.rope_scaling.type == hc::RopeScalingType::None);
  hc::ModelConfig s = parse(llama(R"("rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":20000})"));
  CHECK(s.rope_scaling.type == hc::RopeScalingType::Linear);
  CHECK(s.rope_theta == 20000.0);
}

namespace {

// "[f0,f1,...]" with n entries first, first + step, ...
std::string factor_list(int n, double first, double step) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) out += (i ? "," : "") + std::to_string(first + step * i);
  return out + "]";
}

// A Phi-3-mini-128K-shaped config.json in transformers 4.x form; `extra` goes at the end.
std::string phi3(const std::string& rope_scaling, const std::string& extra = "") {
  return R"({"_name_or_path":"Phi-3-mini-128k-instruct","architectures":["Phi3ForCausalLM"],)"
         R"("attention_bias":false,"attention_dropout":0.0,"bos_token_id":1,"embd_pdrop":0.0,"eos_token_id":32000,)"
         R"("hidden_act":"silu","hidden_size":3072,"initializer_range":0.02,"intermediate_size":8192,)"
         R"("max_position_embeddings":131072,"model_type":"phi3","num_attention_heads":32,"num_hidden_layers":32,)"
         R"("num_key_value_heads":32,"original_max_position_embeddings":4096,"pad_token_id":32000,)"
         R"("resid_pdrop":0.0,"rms_norm_eps":1e-05,"rope_scaling":)" +
         rope_scaling + R"(,"rope_theta":10000.0,"sliding_window":262144,"tie_word_embeddings":false,)"
                        R"("torch_dtype":"bfloat16","use_cache":true,"vocab_size":32064)" +
         (extra.empty() ? "" : "," + extra) + "}";
}

std::string longrope(const std::string& type, int pairs = 48, const std::string& extra = "") {
  return R"({"type":")" + type + R"(","short_factor":)" + factor_list(pairs, 1.0, 0.01) +
         R"(,"long_factor":)" + factor_list(pairs, 1.0, 0.5) + (extra.empty() ? "" : "," + extra) + "}";
}

}  // namespace

TEST_CASE("phi3: longrope from the top-level original context, head_dim 96, 4.x and 5.x forms", "[io][config]") {
  const hc::ModelConfig c = parse(phi3(longrope("longrope")));
  CHECK(c.arch == "phi3");
  CHECK(c.head_dim == 96);
  CHECK(c.rotary_dims() == 96);
  CHECK(c.rotary_dim == 0);
  CHECK(c.max_context == 131072);
  CHECK_FALSE(c.qkv_bias);
  CHECK_FALSE(c.qk_norm);
  const hc::RopeScaling& s = c.rope_scaling;
  CHECK(s.type == hc::RopeScalingType::LongRope);
  CHECK(s.original_max_position == 4096);
  CHECK(s.factor == 32.0);  // 131072 / 4096
  CHECK(s.attention_factor == 0.0);
  REQUIRE(s.short_factor.size() == 48);
  REQUIRE(s.long_factor.size() == 48);
  CHECK(s.short_factor[47] == Approx(1.47));
  CHECK(s.long_factor[47] == Approx(24.5));

  // "su" (the first 128K release) and, for phi3, "yarn" are transformers' older names for longrope.
  CHECK(parse(phi3(longrope("su"))).rope_scaling.long_factor == s.long_factor);
  CHECK(parse(phi3(longrope("yarn"))).rope_scaling.type == hc::RopeScalingType::LongRope);
  // The top-level original context wins over one inside rope_scaling; explicit factor and
  // attention_factor are taken as given.
  const hc::ModelConfig given = parse(phi3(
      longrope("longrope", 48, R"("original_max_position_embeddings":1024,"factor":8.0,"attention_factor":1.25)")));
  CHECK(given.rope_scaling.original_max_position == 4096);
  CHECK(given.rope_scaling.factor == 8.0);
  CHECK(given.rope_scaling.attention_factor == 1.25);
  // Without one, Phi3Config's default 4096.
  std::string no_original = phi3(longrope("longrope"));
  no_original.erase(no_original.find(R"("original_max_position_embeddings":4096,)"), 40);
  CHECK(parse(no_original).rope_scaling.original_max_position == 4096);
  // The 4K model: no rope scaling.
  CHECK(parse(phi3("null", R"("partial_rotary_factor":1.0)")).rope_scaling.type == hc::RopeScalingType::None);

  // transformers 5.x writes rope_parameters (theta and partial_rotary_factor inside).
  const std::string v5 = R"({"model_type":"phi3","num_hidden_layers":2,"num_attention_heads":2,)"
                         R"("num_key_value_heads":1,"hidden_size":128,"intermediate_size":64,"vocab_size":128,)"
                         R"("max_position_embeddings":256,"original_max_position_embeddings":64,)"
                         R"("rope_parameters":{"rope_type":"longrope","rope_theta":500.0,"partial_rotary_factor":0.75,)"
                         R"("original_max_position_embeddings":64,"short_factor":)" +
                         factor_list(24, 1.0, 0.0) + R"(,"long_factor":)" + factor_list(24, 2.0, 0.0) + "}}";
  const hc::ModelConfig p = parse(v5);
  CHECK(p.head_dim == 64);
  CHECK(p.rotary_dim == 48);
  CHECK(p.rotary_dims() == 48);
  CHECK(p.rope_theta == 500.0);
  CHECK(p.rope_scaling.original_max_position == 64);
  CHECK(p.rope_scaling.factor == 4.0);
  CHECK(p.rope_scaling.long_factor[0] == 2.0);
}

TEST_CASE("phi3: partial rotary, factor lists and sliding windows are checked", "[io][config]") {
  // Phi-4-mini's partial_rotary_factor 0.75: of head_dim 96, int(72) dimensions rotate, 36 factors each.
  const hc::ModelConfig c = parse(phi3(longrope("longrope", 36), R"("partial_rotary_factor":0.75)"));
  CHECK(c.rotary_dim == 72);  // int(96 * 0.75)
  CHECK(c.rope_scaling.short_factor.size() == 36);
  // One inside the rope object wins over the top level, as Phi3Config reads them.
  CHECK(parse(phi3(longrope("longrope", 36, R"("partial_rotary_factor":0.75)"), R"("partial_rotary_factor":0.5)"))
            .rotary_dim == 72);

  std::string msg = parse_error(phi3(longrope("longrope", 47)));
  CHECK(contains(msg, kSource));
  CHECK(contains(msg, "rope_scaling.short_factor has 47 entries"));
  CHECK(contains(msg, "48"));
  CHECK(contains(parse_error(phi3(longrope("longrope", 48), R"("partial_rotary_factor":0.75)")), "has 48 entries"));
  CHECK(contains(parse_error(phi3(R"({"type":"longrope","short_factor":[1.0]})")), "missing \"long_factor\""));
  CHECK(contains(parse_error(phi3(R"({"type":"longrope","short_factor":"x","long_factor":[1]})")),
                 "rope_scaling.short_factor\" must be a list of numbers"));
  CHECK(contains(parse_error(phi3(R"({"type":"longrope","short_factor":[1,"a"],"long_factor":[1]})")),
                 "rope_scaling.short_factor[1]\" must be a number"));
  std::string negative = longrope("longrope");
  negative.replace(negative.find("1.000000"), 8, "-1.00000");
  CHECK(contains(parse_error(phi3(negative)), "rope_scaling.short_factor[0] must be a finite number > 0"));
  CHECK(contains(parse_error(phi3(longrope("longrope"), R"("partial_rotary_factor":0.0)")), "partial_rotary_factor"));
  CHECK(contains(parse_error(phi3(longrope("longrope"), R"("partial_rotary_factor":0.01)")),
                 "RoPE needs an even number"));

  // Phi-3-mini-4K's window of 2047 is shorter than its context: refused, as mistral's.
  std::string window = phi3("null");
  window.replace(window.find("262144"), 6, "2047");
  window.replace(window.find("131072"), 6, "4096");
  msg = parse_error(window);
  CHECK(contains(msg, "sliding_window"));
  CHECK(contains(msg, "2047"));
  CHECK(contains(parse_error(phi3("null", R"("attention_bias":true)")), "attention_bias"));
}

TEST_CASE("longrope outside phi3 takes the rope object's original context", "[io][config]") {
  const hc::ModelConfig c =
      parse(llama(R"("rope_scaling":{"rope_type":"longrope","original_max_position_embeddings":2048,)"
                  R"("short_factor":)" +
                  factor_list(32, 1.0, 0.0) + R"(,"long_factor":)" + factor_list(32, 3.0, 0.0) + "}"));
  CHECK(c.rope_scaling.type == hc::RopeScalingType::LongRope);
  CHECK(c.rope_scaling.original_max_position == 2048);
  CHECK(c.rope_scaling.factor == 4.0);  // 8192 / 2048
  CHECK(contains(parse_error(llama(R"("rope_scaling":{"rope_type":"longrope","factor":4.0})")),
                 "missing \"short_factor\""));
  // "su" is an older name for longrope in Phi3Config only.
  CHECK(contains(parse_error(llama(R"("rope_scaling":{"type":"su","short_factor":[1],"long_factor":[1]})")),
                 "'su' is not supported"));
}

TEST_CASE("mistral", "[io][config]") {
  const std::string base =
      R"({"model_type":"mistral","num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,)"
      R"("hidden_size":4096,"intermediate_size":14336,"vocab_size":32768,"max_position_embeddings":32768,)"
      R"("rms_norm_eps":1e-05,"rope_theta":1000000.0,"bos_token_id":1,"eos_token_id":2,)";
  hc::ModelConfig c = parse(base + R"("sliding_window":null})");
  CHECK(c.arch == "mistral");
  CHECK(c.n_kv_heads == 8);
  CHECK(c.head_dim == 128);
  CHECK(c.rope_theta == 1000000.0);
  CHECK_FALSE(c.qkv_bias);
  // Mistral 7B v0.1's 4096-token window would be modelled wrongly as full attention: refused.
  std::string msg = parse_error(base + R"("sliding_window":4096})");
  CHECK(contains(msg, "sliding_window"));
  CHECK(contains(msg, "4096"));
  CHECK(parse(base + R"("sliding_window":32768})").max_context == 32768);  // window >= context: no effect
}

TEST_CASE("qwen3: q/k norm, explicit head_dim, no bias", "[io][config]") {
  // Qwen3-0.6B's shape: 16 heads of 128 = 2048 attention features from hidden 1024.
  const std::string base =
      R"({"model_type":"qwen3","num_hidden_layers":28,"num_attention_heads":16,"num_key_value_heads":8,)"
      R"("head_dim":128,"hidden_size":1024,"intermediate_size":3072,"vocab_size":151936,)"
      R"("max_position_embeddings":40960,"rms_norm_eps":1e-06,"rope_theta":1000000,"tie_word_embeddings":true,)"
      R"("sliding_window":null,"bos_token_id":151643,"eos_token_id":151645,)";
  hc::ModelConfig c = parse(base + R"("attention_bias":false,"use_sliding_window":false})");
  CHECK(c.arch == "qwen3");
  CHECK(c.qk_norm);
  CHECK_FALSE(c.qkv_bias);
  CHECK(c.head_dim == 128);
  CHECK(c.head_dim * c.n_heads == 2 * c.hidden);
  CHECK(c.n_kv_heads == 8);
  CHECK(c.tie_embeddings);
  // qwen2 and llama carry no q/k norm.
  CHECK_FALSE(parse(llama()).qk_norm);
  CHECK_FALSE(parse(llama("", "qwen2")).qk_norm);
  // Qwen3's attention_bias also biases o_proj, which the graph lacks; sliding windows are refused.
  CHECK(contains(parse_error(base + R"("attention_bias":true})"), "attention_bias"));
  CHECK(contains(parse_error(base + R"("use_sliding_window":true})"), "use_sliding_window"));
}

TEST_CASE("glm: partial interleaved rope, q/k/v bias, transformers' GlmConfig defaults", "[io][config]") {
  // glm-4-9b-chat-hf's shape: 32 heads of 128, 2 KV heads, half of each head rotating.
  const std::string base =
      R"({"model_type":"glm","architectures":["GlmForCausalLM"],"num_hidden_layers":40,)"
      R"("num_attention_heads":32,"num_key_value_heads":2,"hidden_size":4096,"intermediate_size":13696,)"
      R"("vocab_size":151552,"max_position_embeddings":131072,"eos_token_id":[151329,151336,151338],)"
      R"("pad_token_id":151329,"tie_word_embeddings":false,"hidden_act":"silu")";
  const hc::ModelConfig c = parse(base + R"(,"head_dim":128,"partial_rotary_factor":0.5,"attention_bias":true,)"
                                         R"("rms_norm_eps":1.5625e-07,"rope_theta":5000000.0})");
  CHECK(c.arch == "glm");
  CHECK(c.head_dim == 128);
  CHECK(c.rotary_dim == 64);
  CHECK(c.rotary_dims() == 64);
  CHECK(c.rope_interleaved);
  CHECK(c.qkv_bias);
  CHECK_FALSE(c.qk_norm);
  CHECK_FALSE(c.post_norms);
  CHECK(c.rope_theta == 5000000.0);
  CHECK(c.rms_eps == 1.5625e-07);
  CHECK(c.eos_id == 151329);

  // GlmConfig's defaults: head_dim 128 (not hidden / heads), factor 0.5, biases on, eps 1.5625e-7.
  const hc::ModelConfig d = parse(base + "}");
  CHECK(d.head_dim == 128);
  CHECK(d.rotary_dim == 64);
  CHECK(d.qkv_bias);
  CHECK(d.rms_eps == 1.5625e-07);
  CHECK(d.rope_theta == 10000.0);
  CHECK_FALSE(parse(base + R"(,"attention_bias":false})").qkv_bias);
  // An odd head_dim times the factor truncates as int() does: 0.3 of 100 is 30.
  CHECK(parse(base + R"(,"head_dim":100,"num_attention_heads":32,"partial_rotary_factor":0.3})").rotary_dim == 30);
  CHECK(parse(base + R"(,"partial_rotary_factor":1.0})").rotary_dims() == 128);

  // Bad factors name the field.
  CHECK(contains(parse_error(base + R"(,"partial_rotary_factor":0})"), "partial_rotary_factor"));
  CHECK(contains(parse_error(base + R"(,"partial_rotary_factor":1.5})"), "partial_rotary_factor"));
  CHECK(contains(parse_error(base + R"(,"partial_rotary_factor":"half"})"), "\"partial_rotary_factor\" must be a number"));
  CHECK(contains(parse_error(base + R"(,"head_dim":10,"partial_rotary_factor":0.3})"), "rotates 3 dimensions"));
  // THUDM's remote-code checkpoints are pointed to the transformers format.
  const std::string chatglm = parse_error(llama("", "chatglm"));
  CHECK(contains(chatglm, kSource));
  CHECK(contains(chatglm, "model_type 'chatglm'"));
  CHECK(contains(chatglm, "glm4"));
}

TEST_CASE("glm4: post norms, the factor from rope_parameters", "[io][config]") {
  // GLM-4-9B-0414 as transformers 5 writes it.
  const hc::ModelConfig c = parse(
      R"({"model_type":"glm4","num_hidden_layers":40,"num_attention_heads":32,"num_key_value_heads":2,)"
      R"("head_dim":128,"hidden_size":4096,"intermediate_size":13696,"vocab_size":151552,)"
      R"("max_position_embeddings":32768,"rms_norm_eps":1e-05,"attention_bias":true,)"
      R"("rope_parameters":{"rope_type":"default","rope_theta":10000.0,"partial_rotary_factor":0.5}})");
  CHECK(c.arch == "glm4");
  CHECK(c.post_norms);
  CHECK(c.rope_interleaved);
  CHECK(c.rotary_dim == 64);
  CHECK(c.qkv_bias);
  CHECK(c.rms_eps == 1e-5);
  CHECK(c.rope_scaling.type == hc::RopeScalingType::None);
  // Llama-family models keep every dimension rotating, in rotate-half pairs, with no post norms.
  const hc::ModelConfig l = parse(llama());
  CHECK(l.rotary_dim == 0);
  CHECK(l.rotary_dims() == l.head_dim);
  CHECK_FALSE(l.rope_interleaved);
  CHECK_FALSE(l.post_norms);
}

TEST_CASE("Yi-200K: a llama config with rope_theta 5e6 and a 200K context", "[io][config]") {
  // Yi-6B-200K's config.json (LlamaForCausalLM): nothing Yi-specific beyond the values.
  const hc::ModelConfig c = parse(
      R"({"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4096,)"
      R"("intermediate_size":11008,"num_attention_heads":32,"num_key_value_heads":4,"num_hidden_layers":32,)"
      R"("max_position_embeddings":200000,"rope_theta":5000000.0,"rms_norm_eps":1e-05,"vocab_size":64000,)"
      R"("bos_token_id":1,"eos_token_id":2,"pad_token_id":0,"hidden_act":"silu","rope_scaling":null,)"
      R"("tie_word_embeddings":false,"attention_bias":false,"torch_dtype":"bfloat16"})");
  CHECK(c.arch == "llama");
  CHECK(c.max_context == 200000);
  CHECK(c.rope_theta == 5000000.0);
  CHECK(c.rope_scaling.type == hc::RopeScalingType::None);
  CHECK(c.n_layers == 32);
  CHECK(c.n_heads == 32);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.head_dim == 128);
  CHECK(c.vocab == 64000);
  CHECK(c.rms_eps == 1e-5);
  CHECK_FALSE(c.qkv_bias);
  CHECK_FALSE(c.tie_embeddings);
  CHECK(c.rotary_dims() == 128);
}

TEST_CASE("qwen2: q/k/v bias, tied embeddings, eos list", "[io][config]") {
  const std::string text =
      R"({"model_type":"qwen2","num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,)"
      R"("hidden_size":896,"intermediate_size":4864,"vocab_size":151936,"max_position_embeddings":32768,)"
      R"("rms_norm_eps":1e-06,"rope_theta":1000000.0,"sliding_window":32768,"use_sliding_window":false,)"
      R"("max_window_layers":21,"tie_word_embeddings":true,"bos_token_id":151643,"eos_token_id":[151645,151643]})";
  hc::ModelConfig c = parse(text);
  CHECK(c.arch == "qwen2");
  CHECK(c.qkv_bias);
  CHECK(c.tie_embeddings);
  CHECK(c.head_dim == 64);
  CHECK(c.n_heads / c.n_kv_heads == 7);
  CHECK(c.bos_id == 151643);
  CHECK(c.eos_id == 151645);
  std::string with_swa = text;
  with_swa.replace(with_swa.find("\"use_sliding_window\":false"), 26, "\"use_sliding_window\":true");
  CHECK(contains(parse_error(with_swa), "use_sliding_window"));
}

TEST_CASE("explicit head_dim wins over hidden / heads", "[io][config]") {
  // Mistral-Nemo shape: 32 heads x 128 = 4096 != hidden 5120.
  hc::ModelConfig c = parse(R"({"model_type":"mistral","num_hidden_layers":40,"num_attention_heads":32,)"
                            R"("num_key_value_heads":8,"head_dim":128,"hidden_size":5120,"intermediate_size":14336,)"
                            R"("vocab_size":131072,"max_position_embeddings":131072})");
  CHECK(c.head_dim == 128);
  CHECK(c.hidden == 5120);
  // head_dim: null means "derive it".
  CHECK(parse(llama(R"("head_dim":null)")).head_dim == 64);
  // Without head_dim, hidden must divide evenly.
  std::string msg = parse_error(R"({"model_type":"llama","num_hidden_layers":1,"num_attention_heads":3,)"
                                R"("hidden_size":32,"intermediate_size":8,"vocab_size":8,"max_position_embeddings":8})");
  CHECK(contains(msg, "not divisible by num_attention_heads 3"));
  CHECK(contains(parse_error(llama(R"("head_dim":63)")), "head_dim must be even"));
}

TEST_CASE("bos/eos token ids: integer, list (first taken), empty list, null", "[io][config]") {
  // Llama 3.1 Instruct: eos_token_id is a list of three ids.
  hc::ModelConfig c = parse(R"({"model_type":"llama","num_hidden_layers":32,"num_attention_heads":32,)"
                            R"("num_key_value_heads":8,"hidden_size":4096,"intermediate_size":14336,)"
                            R"("vocab_size":128256,"max_position_embeddings":131072,)"
                            R"("bos_token_id":128000,"eos_token_id":[128001,128008,128009]})");
  CHECK(c.bos_id == 128000);
  CHECK(c.eos_id == 128001);
  hc::ModelConfig d = parse(llama(R"("bos_token_id":[7,5],"eos_token_id":[],"pad_token_id":null)"));
  CHECK(d.bos_id == 7);
  CHECK(d.eos_id == -1);
  hc::ModelConfig e = parse(llama(R"("bos_token_id":null,"eos_token_id":3)"));
  CHECK(e.bos_id == -1);
  CHECK(e.eos_id == 3);
  CHECK(contains(parse_error(llama(R"("bos_token_id":"<s>")")), "bos_token_id"));
}

TEST_CASE("unsupported architectures and features are refused with the field named", "[io][config]") {
  std::string msg = parse_error(llama("", "gpt_neox"));
  CHECK(contains(msg, kSource));
  CHECK(contains(msg, "model_type 'gpt_neox' is not supported"));
  CHECK(contains(parse_error(R"({"num_hidden_layers":2})"), "missing field \"model_type\""));
  CHECK(contains(parse_error(llama(R"("attention_bias":true)")), "attention_bias"));
  CHECK(contains(parse_error(llama(R"("mlp_bias":true)")), "mlp_bias"));
  CHECK(contains(parse_error(llama(R"("hidden_act":"gelu")")), "'gelu' is not supported"));
  // attention_bias: false is what most Llama configs carry.
  CHECK_FALSE(parse(llama(R"("attention_bias":false)")).qkv_bias);
}

TEST_CASE("missing and mistyped fields name the field", "[io][config]") {
  std::string msg = parse_error(R"({"model_type":"llama","num_hidden_layers":2,"num_attention_heads":4,)"
                                R"("hidden_size":32,"vocab_size":64,"max_position_embeddings":128})");
  CHECK(contains(msg, kSource));
  CHECK(contains(msg, "missing field \"intermediate_size\""));
  CHECK(contains(parse_error(llama(R"("num_key_value_heads":"3")")), "\"num_key_value_heads\" must be an integer"));
  CHECK(contains(parse_error(llama(R"("rms_norm_eps":"tiny")")), "\"rms_norm_eps\" must be a number"));
  CHECK(contains(parse_error(llama(R"("tie_word_embeddings":1)")), "tie_word_embeddings"));
  CHECK(contains(parse_error("{\"model_type\": \"llama\",, }"), "malformed JSON"));
  CHECK(contains(parse_error("[1, 2]"), "not a JSON object"));
}

TEST_CASE("validate: every size > 0, GQA divisibility, even head_dim, sane eps/theta", "[io][config]") {
  hc::ModelConfig good = parse(llama());
  REQUIRE_NOTHROW(good.validate("src"));

  auto fails_with = [&](std::function<void(hc::ModelConfig&)> edit, const std::string& field) {
    hc::ModelConfig c = good;
    edit(c);
    std::string msg = input_error_of([&] { c.validate("model.gguf"); });
    CHECK(contains(msg, "model.gguf: "));
    CHECK(contains(msg, field));
  };
  fails_with([](auto& c) { c.n_layers = 0; }, "n_layers");
  fails_with([](auto& c) { c.n_heads = -1; }, "n_heads");
  fails_with([](auto& c) { c.n_kv_heads = 0; }, "n_kv_heads");
  fails_with([](auto& c) { c.hidden = 0; }, "hidden");
  fails_with([](auto& c) { c.intermediate = 0; }, "intermediate");
  fails_with([](auto& c) { c.vocab = 0; }, "vocab");
  fails_with([](auto& c) { c.max_context = 0; }, "max_context");
  fails_with([](auto& c) { c.head_dim = 0; }, "head_dim");
  fails_with([](auto& c) { c.head_dim = 65; }, "head_dim must be even");
  fails_with([](auto& c) { c.n_kv_heads = 4; }, "not a multiple of n_kv_heads");  // 9 % 4
  fails_with([](auto& c) { c.rms_eps = 0; }, "rms_eps");
  fails_with([](auto& c) { c.rope_theta = -5; }, "rope_theta");
  fails_with([](auto& c) { c.hidden = int64_t(1) << 40; }, "implausibly large");
  fails_with([](auto& c) { c.arch = "falcon"; }, "falcon");
  fails_with([](auto& c) { c.bos_id = 49152; }, "bos_token_id");
  fails_with([](auto& c) { c.eos_id = -7; }, "eos_token_id");
  fails_with(
      [](auto& c) {
        c.rope_scaling.type = hc::RopeScalingType::Linear;
        c.rope_scaling.factor = 0;
      },
      "rope_scaling.factor");
  fails_with(
      [](auto& c) {
        c.rope_scaling.type = hc::RopeScalingType::Llama3;
        c.rope_scaling.original_max_position = 0;
      },
      "original_max_position");

  fails_with([](auto& c) { c.rotary_dim = 31; }, "rotary_dim");   // odd
  fails_with([](auto& c) { c.rotary_dim = 66; }, "rotary_dim");   // beyond head_dim 64
  auto longrope = [](hc::ModelConfig& c) {
    c.rotary_dim = 32;
    c.rope_scaling.type = hc::RopeScalingType::LongRope;
    c.rope_scaling.original_max_position = 2048;
    c.rope_scaling.factor = 4.0;
    c.rope_scaling.short_factor.assign(16, 1.0);
    c.rope_scaling.long_factor.assign(16, 2.0);
  };
  {
    hc::ModelConfig c = good;
    longrope(c);
    CHECK_NOTHROW(c.validate("src"));
  }
  fails_with(
      [&](auto& c) {
        longrope(c);
        c.rope_scaling.long_factor.assign(32, 2.0);  // one per pair of head_dim, not of the 32 rotated
      },
      "rope_scaling.long_factor has 32 entries");
  fails_with(
      [&](auto& c) {
        longrope(c);
        c.rope_scaling.original_max_position = 1;
      },
      "at least 2");
  fails_with(
      [&](auto& c) {
        longrope(c);
        c.rope_scaling.attention_factor = -1;
      },
      "rope_scaling.attention_factor");

  // GQA with one KV head and odd head counts are fine.
  hc::ModelConfig mqa = good;
  mqa.n_kv_heads = 1;
  CHECK_NOTHROW(mqa.validate("src"));
}
