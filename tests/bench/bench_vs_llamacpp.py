#!/usr/bin/env python3
"""Prefill and decode speed: TokenSelect's CLI against llama.cpp (llama-cpp-python) on one GGUF.

For each context length C, both engines
  - prefill C pseudo-random ordinary (token type 1) token ids, timed as one call, then
  - decode --gen tokens greedily, one token per call, timed together.
TokenSelect: `tokenselect bench --json` (its own session per context, n_ctx = C + gen + 1).
llama.cpp:   a fresh llama_cpp.Llama per context with n_ctx = C + 64, n_batch = 512,
             n_threads = --threads, logits only for the last token; prefill = llm.eval(tokens),
             decode = --gen single-token llm.eval calls with argmax of the last logits.
Prints one markdown table. Neither engine gets a warm-up run.

Usage: bench_vs_llamacpp.py [--cli PATH] [--model PATH] [--contexts 512,2048,8192]
                            [--threads 2] [--gen 32]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def bench_tokenselect(cli, model, contexts, threads, gen):
    cmd = [cli, "bench", "--model", model, "--contexts", ",".join(map(str, contexts)),
           "--gen", str(gen), "--threads", str(threads), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    # Tolerate log lines before the JSON array.
    rows = json.loads(out[out.index("["):])
    return {int(r["context"]): r for r in rows}


def bench_llamacpp(model, ctx, threads, gen):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=model, n_ctx=ctx + 64, n_threads=threads,
                          n_threads_batch=threads, n_batch=512, logits_all=False, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llm.n_vocab()
    pool = np.array([t for t in range(n_vocab)
                     if llama_cpp.llama_vocab_get_attr(vocab, t) & llama_cpp.LLAMA_TOKEN_ATTR_NORMAL])
    rng = np.random.default_rng(1234)
    tokens = [int(t) for t in rng.choice(pool, size=ctx)]

    def last_argmax():
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
        return int(np.argmax(logits))

    t0 = time.perf_counter()
    llm.eval(tokens)
    nxt = last_argmax()
    t1 = time.perf_counter()
    for _ in range(gen):
        llm.eval([nxt])
        nxt = last_argmax()
    t2 = time.perf_counter()
    llm.close()
    return {"context": ctx, "prefill_tokens_per_s": ctx / (t1 - t0),
            "time_to_first_token_s": t1 - t0, "decode_tokens_per_s": gen / (t2 - t1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "app", "cli", "tokenselect"))
    ap.add_argument("--model", default=os.environ.get("TS_MODEL") or os.path.join(
        ROOT, "assets", "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--contexts", default="512,2048,8192",
                    type=lambda s: [int(x) for x in s.split(",") if x])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gen", type=int, default=32)
    args = ap.parse_args()

    print(f"tokenselect bench ({args.cli}) ...", file=sys.stderr)
    ts = bench_tokenselect(args.cli, args.model, args.contexts, args.threads, args.gen)
    lc = {}
    for ctx in args.contexts:
        print(f"llama.cpp context {ctx} ...", file=sys.stderr)
        lc[ctx] = bench_llamacpp(args.model, ctx, args.threads, args.gen)

    print(f"model `{os.path.basename(args.model)}`, {args.threads} threads, {args.gen} decoded tokens\n")
    print("| context | prefill tok/s (tokenselect) | prefill tok/s (llama.cpp) "
          "| decode tok/s (tokenselect) | decode tok/s (llama.cpp) |")
    print("|--:|--:|--:|--:|--:|")
    for ctx in args.contexts:
        a, b = ts[ctx], lc[ctx]
        print(f"| {ctx} | {a['prefill_tokens_per_s']:.1f} | {b['prefill_tokens_per_s']:.1f} "
              f"| {a['decode_tokens_per_s']:.2f} | {b['decode_tokens_per_s']:.2f} |")


if __name__ == "__main__":
    main()
