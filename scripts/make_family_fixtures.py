#!/usr/bin/env python3
"""Tiny random-weight Hugging Face models of the newer families, with transformers' own logits.

Writes, for tests/calib/test_family_logits.cpp:
  tests/data/good_hf_tiny_qwen2_yarn/  Qwen2ForCausalLM with YaRN rope scaling (factor 4 over an
                                       original context of 64, so positions past 64 use it)
  tests/data/good_hf_tiny_qwen3/       Qwen3ForCausalLM (per-head q/k RMSNorm, head_dim 64 while
                                       hidden / heads is 16)
  tests/data/good_hf_tiny_phi3/        Phi3ForCausalLM (fused qkv_proj and gate_up_proj, LongRoPE
                                       from an original context of 64 to 256, partial rotary 0.75:
                                       RoPE on 48 of head_dim 64)
  tests/data/good_hf_tiny_glm/         GlmForCausalLM (RoPE on the first half of each head in
                                       interleaved pairs, q/k/v biases, fused gate_up_proj)
  tests/data/good_hf_tiny_glm4/        Glm4ForCausalLM (as glm, plus RMSNorm of the attention and
                                       MLP outputs)
each as config.json + model.safetensors (float32) + reference.json: the token ids and
transformers' float32 logits at every position ([N, vocab], vocab 128); and the same weights as
GGUF files (F32, llama.cpp's tensor and metadata names, no tokenizer) beside them:
  tests/data/good_tiny_qwen2_yarn.gguf, tests/data/good_tiny_qwen3.gguf, tests/data/good_tiny_phi3.gguf,
  tests/data/good_tiny_glm4.gguf (llama.cpp's glm4 architecture)
  tests/data/good_tiny_chatglm.gguf (the glm weights in llama.cpp's chatglm architecture, the one
                                     its converter writes THUDM's GLM-4-9B-chat and -chat-1m as)

LongRoPE picks its factor set by the prefill's length, so the phi3 reference.json also holds
"short": the logits of a prefill of the first SHORT_TOKENS ids alone, at most the original
context (short factors), beside the full prefill of N_TOKENS beyond it (long factors).

Weights are drawn with a fixed seed at magnitudes that make attention far from uniform and the
q/k norm weights far from 1, so a missing feature moves the logits well past the tests' bounds.
GLM's gate and up halves get different scales, so reading them swapped shows.

Usage: make_family_fixtures.py [--out tests/data]
Needs torch (CPU is enough), transformers (>= 4.51, for Qwen3 and Glm4), safetensors and gguf.
"""
import argparse
import json
import math
import os

import gguf
import numpy as np
import torch
import transformers

N_TOKENS = 100
SHORT_TOKENS = 48
VOCAB = 128


def common_config(**overrides):
    c = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
             rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
             bos_token_id=1, eos_token_id=2)
    c.update(overrides)
    return c


def randomise(model, seed):
    """Embeddings ~ N(0, 0.25^2), linear weights ~ N(0, 0.15^2), biases ~ N(0, 0.1^2), norm weights
    1 + N(0, 0.3^2): logits of a few units, attention far from uniform."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name:
                p.copy_(1.0 + 0.3 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            elif "embed_tokens" in name:
                p.copy_(0.25 * noise)
            else:
                p.copy_(0.15 * noise)


def float_rows(logits):
    return [[float(f"{v:.7g}") for v in row] for row in logits.tolist()]


def write(model, out_dir, seed, short_tokens=None):
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    for extra in ("generation_config.json",):
        path = os.path.join(out_dir, extra)
        if os.path.exists(path):
            os.remove(path)
    g = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(0, VOCAB, (N_TOKENS,), generator=g)
    with torch.no_grad():
        logits = model(tokens[None, :]).logits[0].float()  # [N, vocab]
    ref = {
        "transformers": transformers.__version__,
        "tokens": tokens.tolist(),
        "logits": float_rows(logits),
    }
    if short_tokens:
        with torch.no_grad():
            short = model(tokens[None, :short_tokens]).logits[0].float()  # [short_tokens, vocab]
        ref["short"] = {"tokens": short_tokens, "logits": float_rows(short)}
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")


# Hugging Face per-layer names -> llama.cpp's (blk.N.<name>).
LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    # phi3: fused q/k/v, and gate and up stacked in ffn_up (llama.cpp's phi3 has no ffn_gate)
    "self_attn.qkv_proj.weight": "attn_qkv.weight", "mlp.gate_up_proj.weight": "ffn_up.weight",
    # glm4: the norms of the attention and MLP outputs
    "post_self_attn_layernorm.weight": "post_attention_norm.weight",
    "post_mlp_layernorm.weight": "post_ffw_norm.weight",
}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    _, _, layer, rest = hf.split(".", 3)  # model.layers.N.rest
    return f"blk.{layer}.{LAYER_NAMES[rest]}"


def write_gguf(model, path, arch, rope_kv=(), rope_dims=None, extra_tensors=()):
    """Qwen2/Qwen3/Phi3/GLM-4 rows keep Hugging Face order (the converter permutes only llama-arch
    Q/K, and GLM-4's only for M-RoPE, which text GLM-4 does not use)."""
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"tiny-{arch}")
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(rope_dims or head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_vocab_size(c.vocab_size)
    for method, value in rope_kv:
        getattr(w, method)(value)
    for name, values in extra_tensors:
        w.add_tensor(name, np.asarray(values, dtype=np.float32))
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and c.tie_word_embeddings:
            continue  # tied: no output.weight, as the converter writes it
        w.add_tensor(gguf_name(name), tensor.detach().float().numpy().astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_chatglm_gguf(model, path):
    """The glm model as llama.cpp's converter writes THUDM's ChatGLMModel checkpoints: q/k/v fused
    as attn_qkv (weight and bias, rows q then k then v, as query_key_value), gate and up fused as
    ffn_up (dense_h_to_4h), and its metadata: context_length from seq_length, rope.dimension_count
    int(head_dim * 0.5), rope.freq_base 10000 * rope_ratio (1 here), layer_norm_rms_epsilon from
    layernorm_epsilon, add_bos_token false. The converter writes no key_length (llama.cpp takes
    hidden / heads); this model's head_dim 64 is not hidden / heads (16), so key_length and
    value_length say it."""
    c = model.config
    head_dim = c.head_dim
    w = gguf.GGUFWriter(path, "chatglm")
    w.add_name("tiny-chatglm")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(int(head_dim * 0.5))
    w.add_add_bos_token(False)
    w.add_rope_freq_base(10000.0)
    sd = {k: v.detach().float().numpy().astype(np.float32) for k, v in model.state_dict().items()}

    def put(name, array):
        w.add_tensor(name, np.ascontiguousarray(array))

    put("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(c.num_hidden_layers):
        hf = f"model.layers.{i}."
        blk = f"blk.{i}."
        put(blk + "attn_norm.weight", sd[hf + "input_layernorm.weight"])
        for kind in ("weight", "bias"):
            put(blk + f"attn_qkv.{kind}",
                np.concatenate([sd[hf + f"self_attn.{x}_proj.{kind}"] for x in "qkv"], axis=0))
        put(blk + "attn_output.weight", sd[hf + "self_attn.o_proj.weight"])
        put(blk + "ffn_norm.weight", sd[hf + "post_attention_layernorm.weight"])
        put(blk + "ffn_up.weight", sd[hf + "mlp.gate_up_proj.weight"])
        put(blk + "ffn_down.weight", sd[hf + "mlp.down_proj.weight"])
    put("output_norm.weight", sd["model.norm.weight"])
    put("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
    args = ap.parse_args()
    torch.manual_seed(0)

    # head_dim 64 (hidden / heads), a size the CUDA engine's attention kernel runs.
    qwen2 = transformers.Qwen2Config(
        **common_config(hidden_size=128, num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True),
        rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64})
    model = transformers.Qwen2ForCausalLM(qwen2).float().eval()
    randomise(model, 20)
    write(model, os.path.join(args.out, "good_hf_tiny_qwen2_yarn"), 20)
    write_gguf(model, os.path.join(args.out, "good_tiny_qwen2_yarn.gguf"), "qwen2",
               [("add_rope_scaling_type", gguf.RopeScalingType.YARN), ("add_rope_scaling_factor", 4.0),
                ("add_rope_scaling_orig_ctx_len", 64)])

    qwen3 = transformers.Qwen3Config(**common_config(), head_dim=64, attention_bias=False)
    model = transformers.Qwen3ForCausalLM(qwen3).float().eval()
    randomise(model, 30)
    write(model, os.path.join(args.out, "good_hf_tiny_qwen3"), 30)
    write_gguf(model, os.path.join(args.out, "good_tiny_qwen3.gguf"), "qwen3")

    # Phi-3: head_dim 64 (hidden / heads) so the CUDA engine runs it; partial rotary 0.75 rotates
    # 48 dimensions (24 pairs, one longrope factor each). Short factors near 1, long factors up to
    # 8: the two sets, and the magnitude sqrt(1 + ln 4 / ln 64), each move the logits far.
    pairs = 24
    short_factor = [round(1.0 + 0.5 * t / (pairs - 1), 4) for t in range(pairs)]
    long_factor = [round(8.0 ** (t / (pairs - 1)), 4) for t in range(pairs)]
    phi3 = transformers.Phi3Config(
        **common_config(hidden_size=128, num_attention_heads=2, num_key_value_heads=1, pad_token_id=None),
        original_max_position_embeddings=64, partial_rotary_factor=0.75, sliding_window=None,
        rope_scaling={"type": "longrope", "short_factor": short_factor, "long_factor": long_factor})
    model = transformers.Phi3ForCausalLM(phi3).float().eval()
    randomise(model, 40)
    write(model, os.path.join(args.out, "good_hf_tiny_phi3"), 40, short_tokens=SHORT_TOKENS)
    # The converter's magnitude: sqrt(1 + ln(scale) / ln(original)), scale = context / original.
    scale = phi3.max_position_embeddings / 64
    write_gguf(model, os.path.join(args.out, "good_tiny_phi3.gguf"), "phi3",
               [("add_rope_scaling_orig_ctx_len", 64), ("add_sliding_window", 0),
                ("add_rope_scaling_attn_factors", math.sqrt(1 + math.log(scale) / math.log(64)))],
               rope_dims=48,
               extra_tensors=[("rope_factors_long.weight", long_factor), ("rope_factors_short.weight", short_factor)])

    # GLM: head_dim 64 of which partial_rotary_factor 0.5 rotates; hidden / heads would be 16.
    # intermediate 96, so the fused gate_up_proj is [192, 64].
    glm_fields = dict(head_dim=64, intermediate_size=96, attention_bias=True, partial_rotary_factor=0.5,
                      pad_token_id=None)
    for name, config_class, model_class, seed in (
            ("glm", transformers.GlmConfig, transformers.GlmForCausalLM, 40),
            ("glm4", transformers.Glm4Config, transformers.Glm4ForCausalLM, 50)):
        config = config_class(**common_config(**glm_fields))
        model = model_class(config).float().eval()
        randomise(model, seed)
        with torch.no_grad():  # the up half of each gate_up_proj at 3x the gate half's scale
            for layer in model.model.layers:
                layer.mlp.gate_up_proj.weight[config.intermediate_size:] *= 3.0
        write(model, os.path.join(args.out, f"good_hf_tiny_{name}"), seed)
        if name == "glm":
            write_chatglm_gguf(model, os.path.join(args.out, "good_tiny_chatglm.gguf"))
        if name == "glm4":  # the converter's rope width: int(head_dim * partial_rotary_factor)
            write_gguf(model, os.path.join(args.out, "good_tiny_glm4.gguf"), "glm4", rope_dims=32)


if __name__ == "__main__":
    main()
