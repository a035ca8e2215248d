#!/usr/bin/env python3
"""Tiny random-weight GGUF models and their llama.cpp goldens.

Writes
  tests/data/models/tiny-qwen2.gguf       arch qwen2: attn_q/k/v biases, separate output.weight,
                                          gpt2 BPE vocab = the first 1024 SmolLM2 tokens (which
                                          include <|endoftext|>=0, <|im_start|>=1, <|im_end|>=2
                                          as control tokens) plus the merges whose parts and
                                          result lie inside them, pre 'qwen2', ChatML template
  tests/data/models/tiny-llama-spm.gguf   arch llama: SentencePiece vocab (tokenizer.ggml.model
                                          'llama') copied from tests/data/tokenizer/tiny-spm.gguf
                                          (or trained here with spm_train if that file is
                                          missing), tied embeddings (no output.weight), add_bos
  tests/data/reference/tiny-qwen2.json, tiny-llama-spm.json   goldens (tests/reference/README.md)

Both models: 2 layers, n_embd 64, 4 heads, 2 KV heads (GQA), head_dim 16, n_ff 128,
context_length 2048, rope freq_base 10000, rms eps 1e-5. Weights are seeded normal random
numbers; the matrices use a mix of F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (see the
*_TYPES tables) so the loader and every matmul kernel are exercised. Norm weights and biases are
F32. llama-arch Q/K rows would normally be permuted by the converter; these are random, so they
are written as generated (llama.cpp applies adjacent-pair RoPE to llama, NEOX to qwen2).

Usage: make_tiny_models.py [--threads N] [--models-only] [--check]
  --check: compare the stored goldens with a float64 numpy forward pass (no files written).
Deterministic: same library versions (gguf 0.19.0, llama-cpp-python 0.3.36) give the same files.
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile

import gguf
import numpy as np

from make_tokenizer_goldens import parse_spm_model  # same folder: the SentencePiece .model reader
from gguf import GGMLQuantizationType as T

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(ROOT, "tests", "data", "models")
REF = os.path.join(ROOT, "tests", "data", "reference")
SMOLLM2 = os.path.join(ROOT, "assets", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
TINY_SPM = os.path.join(ROOT, "tests", "data", "tokenizer", "tiny-spm.gguf")

N_LAYER, N_EMBD, N_HEAD, N_HEAD_KV, HEAD_DIM, N_FF = 2, 64, 4, 2, 16, 128
N_CTX_TRAIN, ROPE_BASE, RMS_EPS = 2048, 10000.0, 1e-5

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}")
LLAMA2_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
    "message['content'] | trim + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + "
    "message['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}")

# Weight type per matrix; keys are the tensor-name suffixes, per layer.
QWEN2_TYPES = {
    "token_embd": T.Q8_0,
    "output": T.F16,
    0: {"attn_q": T.F32, "attn_k": T.F16, "attn_v": T.BF16, "attn_output": T.Q8_0,
        "ffn_gate": T.Q4_0, "ffn_up": T.Q4_1, "ffn_down": T.Q5_0},
    1: {"attn_q": T.Q5_1, "attn_k": T.Q4_0, "attn_v": T.Q4_1, "attn_output": T.Q5_0,
        "ffn_gate": T.BF16, "ffn_up": T.F16, "ffn_down": T.Q8_0},
}
LLAMA_TYPES = {
    "token_embd": T.Q5_1,  # tied: also the output projection
    0: {"attn_q": T.Q8_0, "attn_k": T.Q4_1, "attn_v": T.F16, "attn_output": T.BF16,
        "ffn_gate": T.F32, "ffn_up": T.Q5_0, "ffn_down": T.Q4_0},
    1: {"attn_q": T.BF16, "attn_k": T.Q5_0, "attn_v": T.Q5_1, "attn_output": T.F32,
        "ffn_gate": T.Q8_0, "ffn_up": T.Q4_0, "ffn_down": T.F16},
}


# ---------------------------------------------------------------------------------------------
# Writing models


def add_weight(w, name, arr, qtype):
    """arr: float32 numpy array (rows = output features, cols = contiguous ne[0])."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if qtype == T.F32:
        w.add_tensor(name, arr)
    elif qtype == T.F16:
        w.add_tensor(name, arr.astype(np.float16))
    else:
        w.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)


def add_hparams(w, arch, n_vocab):
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_vocab_size(n_vocab)


def add_weights(w, rng, n_vocab, types, biases, tied):
    def norm(n):
        return 1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)

    def mat(rows, cols, std):
        return std * rng.standard_normal((rows, cols), dtype=np.float32)

    q_dim, kv_dim = N_HEAD * HEAD_DIM, N_HEAD_KV * HEAD_DIM
    add_weight(w, "token_embd.weight", mat(n_vocab, N_EMBD, 0.1), types["token_embd"])
    for i in range(N_LAYER):
        t = types[i]
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", norm(N_EMBD))
        add_weight(w, p + "attn_q.weight", mat(q_dim, N_EMBD, 0.15), t["attn_q"])
        add_weight(w, p + "attn_k.weight", mat(kv_dim, N_EMBD, 0.15), t["attn_k"])
        add_weight(w, p + "attn_v.weight", mat(kv_dim, N_EMBD, 0.1), t["attn_v"])
        if biases:
            w.add_tensor(p + "attn_q.bias", 0.2 * rng.standard_normal(q_dim, dtype=np.float32))
            w.add_tensor(p + "attn_k.bias", 0.2 * rng.standard_normal(kv_dim, dtype=np.float32))
            w.add_tensor(p + "attn_v.bias", 0.1 * rng.standard_normal(kv_dim, dtype=np.float32))
        add_weight(w, p + "attn_output.weight", mat(N_EMBD, q_dim, 0.1), t["attn_output"])
        w.add_tensor(p + "ffn_norm.weight", norm(N_EMBD))
        add_weight(w, p + "ffn_gate.weight", mat(N_FF, N_EMBD, 0.1), t["ffn_gate"])
        add_weight(w, p + "ffn_up.weight", mat(N_FF, N_EMBD, 0.1), t["ffn_up"])
        add_weight(w, p + "ffn_down.weight", mat(N_EMBD, N_FF, 0.1), t["ffn_down"])
    # A larger final norm gain so that the logits spread over a few units.
    w.add_tensor("output_norm.weight", 2.0 + 0.2 * rng.standard_normal(N_EMBD, dtype=np.float32))
    if not tied:
        add_weight(w, "output.weight", mat(n_vocab, N_EMBD, 0.25), types["output"])


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def truncated_smollm2_vocab(n_keep=1024):
    r = gguf.GGUFReader(SMOLLM2)
    tokens = list(r.fields["tokenizer.ggml.tokens"].contents())[:n_keep]
    types = list(r.fields["tokenizer.ggml.token_type"].contents())[:n_keep]
    keep = set(tokens)
    merges = []
    for m in r.fields["tokenizer.ggml.merges"].contents():
        a, b = m.split(" ", 1)
        if a in keep and b in keep and a + b in keep:
            merges.append(m)
    return tokens, types, merges


def make_tiny_qwen2(path):
    tokens, types, merges = truncated_smollm2_vocab()
    assert tokens[0] == "<|endoftext|>" and tokens[1] == "<|im_start|>" and tokens[2] == "<|im_end|>"
    w = gguf.GGUFWriter(path, "qwen2")
    w.add_name("tiny-qwen2 (random weights, TokenSelect tests)")
    add_hparams(w, "qwen2", len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)       # <|endoftext|>, as in Qwen2 GGUFs
    w.add_eos_token_id(2)       # <|im_end|>
    w.add_pad_token_id(0)
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML_TEMPLATE)
    add_weights(w, np.random.default_rng(20250101), len(tokens), QWEN2_TYPES, biases=True, tied=False)
    finish(w)


def spm_vocab():
    """tokens, scores, types: from the tokenizer helper's tiny-spm.gguf, else a fresh spm_train."""
    if os.path.exists(TINY_SPM):
        r = gguf.GGUFReader(TINY_SPM)
        return (list(r.fields["tokenizer.ggml.tokens"].contents()),
                [float(s) for s in r.fields["tokenizer.ggml.scores"].contents()],
                [int(t) for t in r.fields["tokenizer.ggml.token_type"].contents()])
    train = os.path.join(HERE, "tiny_spm_train.txt")
    tmp = tempfile.mkdtemp()
    try:
        prefix = os.path.join(tmp, "tiny")
        subprocess.run(["spm_train", f"--input={train}", f"--model_prefix={prefix}", "--vocab_size=400",
                        "--model_type=bpe", "--byte_fallback=true", "--character_coverage=1.0",
                        "--num_threads=1"], check=True, capture_output=True)
        pieces = parse_spm_model(prefix + ".model")
    finally:
        shutil.rmtree(tmp)
    return [p for p, _, _ in pieces], [s for _, s, _ in pieces], [t for _, _, t in pieces]


def make_tiny_llama_spm(path):
    tokens, scores, types = spm_vocab()
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-llama-spm (random weights, TokenSelect tests)")
    add_hparams(w, "llama", len(tokens))
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(tokens.index("<s>"))
    w.add_eos_token_id(tokens.index("</s>"))
    w.add_unk_token_id(tokens.index("<unk>"))
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.add_chat_template(LLAMA2_TEMPLATE)
    add_weights(w, np.random.default_rng(20250102), len(tokens), LLAMA_TYPES, biases=False, tied=True)
    finish(w)


# ---------------------------------------------------------------------------------------------
# Goldens

DECIMALS = 5
TOP_K = 8
TOP_K_LONG = 4
GEN_TOKENS = 32


def chatml(user):
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def inst(user):
    return f"[INST] {user} [/INST]"


PROSE = ("The old lighthouse stood at the edge of the cliff, its white paint peeling in long strips. "
         "Every evening the keeper climbed the spiral stairs, trimmed the wick, and watched the ships "
         "pass safely through the narrow channel below. In winter the storms came in from the west, "
         "and the waves broke so high against the rocks that the spray reached the lamp room windows. "
         "She kept a logbook of every vessel, every gale, and every night the light had burned.")


def genesis_text(n_chars):
    with open(os.path.join(ROOT, "assets", "docs", "genesis-kjv.txt"), encoding="utf-8") as f:
        return f.read()[:n_chars]


# Logit cases: (name, text, n_long, full_all). n_long: take that many tokens of Genesis instead
# of text, store top-4. full_all: store the full logit row at every position (else at a sample).
QWEN2_LOGITS = [
    ("chat", chatml("What is the capital of France?"), None, False),
    ("prose", PROSE, None, False),
    # 1500 positions: guards the RoPE style (NEOX for qwen2) far from position 0.
    ("long_genesis", None, 1500, False),
]
QWEN2_GREEDY = [
    ("chat_capital", chatml("What is the capital of France?")),
    ("chat_poem", chatml("Write a short poem about the sea.")),
    ("plain", "Once upon a time, in a small village by the river,"),
]
SPM_LOGITS = [
    ("inst", inst("What is the capital of France?"), None, True),
    ("prose", PROSE, None, False),
    ("code", "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5\n", None, False),
]
SPM_GREEDY = [
    ("inst_capital", inst("What is the capital of France?")),
    ("inst_poem", inst("Write a short poem about the sea.")),
    ("plain", "Once upon a time, in a small village by the river,"),
]


def make_goldens(model_path, out_path, logit_cases, greedy_cases, threads):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=model_path, n_ctx=N_CTX_TRAIN, n_threads=threads,
                          logits_all=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llm.n_vocab()
    eog_ids = [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)]

    def tokenize(text):
        # add_bos=True means "add the vocabulary's special prefix": BOS for tiny-llama-spm only.
        return llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def top(row, k):
        idx = np.argsort(-row, kind="stable")[:k]
        return [[int(i), round(float(row[i]), DECIMALS)] for i in idx]

    logits = []
    for name, text, n_long, full_all in logit_cases:
        if n_long is not None:
            # The first n_long tokens of Genesis ("text" is then null: the cut may split a word).
            tokens = tokenize(genesis_text(20000))[:n_long]
            assert len(tokens) == n_long
            text = None
            k = TOP_K_LONG
        else:
            tokens = tokenize(text)
            k = TOP_K
        llm.reset()
        llm.eval(tokens)
        scores = np.array(llm.scores[:len(tokens)], dtype=np.float32)
        n = len(tokens)
        if n_long is not None:
            full_pos = [n - 1]
        elif full_all:
            full_pos = list(range(n))
        else:
            full_pos = sorted({0, 1, n // 2, n - 1})
        case = {"name": name, "text": text, "tokens": tokens, "top_k": k,
                "top": [top(row, k) for row in scores],
                "full_positions": full_pos,
                "full": [[round(float(x), DECIMALS) for x in scores[p]] for p in full_pos]}
        logits.append(case)
        print(f"  logits {name}: {n} tokens, top-{k}, full rows at {len(full_pos)} positions, "
              f"logit range [{scores.min():.2f}, {scores.max():.2f}]")

    greedy = []
    for name, text in greedy_cases:
        tokens = tokenize(text)
        llm.reset()
        llm.eval(tokens)
        gen = []
        for _ in range(GEN_TOKENS):
            tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            gen.append(tok)
            llm.eval([tok])
        first_eog = next((i for i, t in enumerate(gen) if t in eog_ids), -1)
        greedy.append({"name": name, "text": text, "prompt_tokens": tokens, "generated": gen,
                       "first_eog": first_eog})
        print(f"  greedy {name}: {len(tokens)} prompt tokens, first_eog={first_eog}, gen={gen[:8]}...")

    doc = {
        "model": os.path.basename(model_path),
        "generator": f"tests/reference/make_tiny_models.py, llama-cpp-python {llama_cpp.__version__}",
        "settings": {"n_ctx": N_CTX_TRAIN, "n_vocab": n_vocab, "decimals": DECIMALS,
                     "gen_tokens": GEN_TOKENS, "eog_ids": eog_ids},
        "logits": logits,
        "greedy": greedy,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


# ---------------------------------------------------------------------------------------------
# Cross-check: a plain float64 numpy forward pass over the dequantised weights (no activation
# quantisation) against the llama.cpp goldens. Documents the model maths and measures how far
# an engine that keeps activations in float may sit from llama.cpp.


def numpy_logits(model_path, tokens):
    r = gguf.GGUFReader(model_path)
    arch = r.fields["general.architecture"].contents()
    W = {}
    for t in r.tensors:
        if t.tensor_type in (T.F32, T.F16):
            a = np.array(t.data, dtype=np.float64)
        else:
            a = gguf.quants.dequantize(np.array(t.data), t.tensor_type).astype(np.float64)
        W[t.name] = a.reshape([int(d) for d in reversed(t.shape)])

    def rmsnorm(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + RMS_EPS) * w

    n = len(tokens)
    pos = np.arange(n)[:, None]
    inv = ROPE_BASE ** (-np.arange(0, HEAD_DIM, 2) / HEAD_DIM)          # [d/2]
    cos, sin = np.cos(pos * inv), np.sin(pos * inv)                     # [n, d/2]

    def rope(x):  # x: [n, heads, d]
        if arch == "qwen2":   # NEOX: rotate (x[i], x[i + d/2])
            a, b = x[..., :HEAD_DIM // 2], x[..., HEAD_DIM // 2:]
        else:                 # llama: rotate adjacent pairs (x[2i], x[2i+1])
            a, b = x[..., 0::2], x[..., 1::2]
        c, s = cos[:, None, :], sin[:, None, :]
        ra, rb = a * c - b * s, a * s + b * c
        out = np.empty_like(x)
        if arch == "qwen2":
            out[..., :HEAD_DIM // 2], out[..., HEAD_DIM // 2:] = ra, rb
        else:
            out[..., 0::2], out[..., 1::2] = ra, rb
        return out

    x = W["token_embd.weight"][tokens]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        h = rmsnorm(x, W[p + "attn_norm.weight"])
        q = h @ W[p + "attn_q.weight"].T + W.get(p + "attn_q.bias", 0)
        k = h @ W[p + "attn_k.weight"].T + W.get(p + "attn_k.bias", 0)
        v = h @ W[p + "attn_v.weight"].T + W.get(p + "attn_v.bias", 0)
        q = rope(q.reshape(n, N_HEAD, HEAD_DIM))
        k = rope(k.reshape(n, N_HEAD_KV, HEAD_DIM))
        v = v.reshape(n, N_HEAD_KV, HEAD_DIM)
        out = np.empty((n, N_HEAD, HEAD_DIM))
        for hh in range(N_HEAD):
            kv = hh // (N_HEAD // N_HEAD_KV)
            sc = q[:, hh] @ k[:, kv].T / np.sqrt(HEAD_DIM) + mask
            sc = np.exp(sc - sc.max(axis=1, keepdims=True))
            out[:, hh] = (sc / sc.sum(axis=1, keepdims=True)) @ v[:, kv]
        x = x + out.reshape(n, -1) @ W[p + "attn_output.weight"].T
        h = rmsnorm(x, W[p + "ffn_norm.weight"])
        g = h @ W[p + "ffn_gate.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
    out_w = W.get("output.weight", W["token_embd.weight"])
    return rmsnorm(x, W["output_norm.weight"]) @ out_w.T


def check(model_path, golden_path):
    doc = json.load(open(golden_path, encoding="utf-8"))
    for case in doc["logits"]:
        ref = numpy_logits(model_path, case["tokens"])
        top_err = max(abs(ref[p][i] - v) for p, row in enumerate(case["top"]) for i, v in row)
        full_err = max((float(np.max(np.abs(ref[p] - np.array(row))))
                        for p, row in zip(case["full_positions"], case["full"])), default=0.0)
        top1 = np.mean([int(np.argmax(ref[p])) == row[0][0] for p, row in enumerate(case["top"])])
        print(f"  check {os.path.basename(model_path)} {case['name']}: max |numpy - llama.cpp| "
              f"top {top_err:.4f}, full rows {full_err:.4f}; top-1 agreement {top1:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models-only", action="store_true", help="write the GGUFs, skip the goldens")
    ap.add_argument("--check", action="store_true",
                    help="only compare the existing goldens with a numpy forward pass")
    args = ap.parse_args()
    os.makedirs(MODELS, exist_ok=True)
    os.makedirs(REF, exist_ok=True)

    qwen2 = os.path.join(MODELS, "tiny-qwen2.gguf")
    spm = os.path.join(MODELS, "tiny-llama-spm.gguf")
    if args.check:
        check(qwen2, os.path.join(REF, "tiny-qwen2.json"))
        check(spm, os.path.join(REF, "tiny-llama-spm.json"))
        return
    make_tiny_qwen2(qwen2)
    make_tiny_llama_spm(spm)
    for p in (qwen2, spm):
        print(f"wrote {p} ({os.path.getsize(p)} bytes)")
    if args.models_only:
        return
    make_goldens(qwen2, os.path.join(REF, "tiny-qwen2.json"), QWEN2_LOGITS, QWEN2_GREEDY, args.threads)
    make_goldens(spm, os.path.join(REF, "tiny-llama-spm.json"), SPM_LOGITS, SPM_GREEDY, args.threads)


if __name__ == "__main__":
    main()
