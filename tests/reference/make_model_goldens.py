#!/usr/bin/env python3
"""Forward-pass goldens for the default model, from llama.cpp (PyPI llama-cpp-python).

Writes tests/data/reference/smollm2.json (format: tests/reference/README.md):
  "logits"  cases: token ids fed (no BOS: the model's add_bos is false) and, per position, the
            top-4 [id, logit] pairs, logits rounded to 4 decimals. Four short prompts (ChatML
            chat, English prose, code) and one long ChatML prompt of 2,000-2,200 tokens built
            from the Book of Genesis.
  "greedy"  ten ChatML prompts, 32 greedy tokens each (argmax of the raw logits, no sampling, no
            repetition penalty, no stopping at end-of-generation tokens), plus the index of the
            first end-of-generation token (llama.cpp's llama_vocab_is_eog: <|endoftext|>=0,
            <|im_end|>=2) in the generated tokens, or -1.

Usage: make_model_goldens.py [--model GGUF] [--out JSON] [--threads N]
The model path defaults to $TS_MODEL, then assets/models/SmolLM2-135M-Instruct.Q4_1.gguf.
Deterministic on a given machine and library version (llama-cpp-python 0.3.36, CPU build).
"""
import argparse
import json
import os

import numpy as np
import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

N_CTX = 4096
TOP_K = 4
DECIMALS = 4
GEN_TOKENS = 32
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(user, system=SYSTEM):
    """The model's chat template with add_generation_prompt=True."""
    return (f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n"
            f"<|im_start|>assistant\n")


LOGIT_PROMPTS = [
    ("chat_capital", chatml("What is the capital of France?")),
    ("chat_explain", chatml("Explain in two sentences why the sky is blue.")),
    ("prose",
     "The old lighthouse stood at the edge of the cliff, its white paint peeling in long strips. "
     "Every evening the keeper climbed the spiral stairs, trimmed the wick, and watched the ships "
     "pass safely through the narrow channel below."),
    ("code",
     "def fibonacci(n: int) -> int:\n"
     "    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
     "    a, b = 0, 1\n"
     "    for _ in range(n):\n"
     "        a, b = b, a + b\n"
     "    return a\n\n\n"
     "if __name__ == \"__main__\":\n"
     "    print([fibonacci(i) for i in range(10)])\n"),
]

LONG_QUESTION = "According to the text above, what did God create on the fourth day?"
LONG_MIN, LONG_MAX = 2000, 2200

GREEDY_PROMPTS = [
    ("capital", "What is the capital of France?"),
    ("math", "What is 12 times 7?"),
    ("haiku", "Write a haiku about the ocean."),
    ("python", "Write a Python function that reverses a string."),
    ("photosynthesis", "Explain photosynthesis to a ten-year-old."),
    ("translate", "Translate 'good morning' into Spanish."),
    ("list", "List three primary colors."),
    ("advice", "Give me one tip for sleeping better."),
    ("history", "Who was the first person to walk on the moon?"),
    ("define", "What does the word 'ephemeral' mean?"),
]


def tokenize(llm, text):
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def eval_logits(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[:len(tokens)], dtype=np.float32)


def top_k(row, k):
    idx = np.argsort(-row, kind="stable")[:k]
    return [[int(i), round(float(row[i]), DECIMALS)] for i in idx]


def long_prompt(llm):
    """A ChatML user message: the start of Genesis (whole lines) and a question, 2,000-2,200 tokens."""
    with open(os.path.join(ROOT, "assets", "docs", "genesis-kjv.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    best = None
    for n in range(1, len(lines) + 1):
        text = chatml("".join(lines[:n]) + "\n" + LONG_QUESTION)
        count = len(tokenize(llm, text))
        if count > LONG_MAX:
            break
        if count >= LONG_MIN:
            best = text
    assert best is not None, "no Genesis prefix gives a prompt in the wanted token range"
    return best


def greedy(llm, tokens, n):
    llm.reset()
    llm.eval(tokens)
    out = []
    for _ in range(n):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(tok)
        llm.eval([tok])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.environ.get("TS_MODEL") or os.path.join(
        ROOT, "assets", "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "reference", "smollm2.json"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    llm = llama_cpp.Llama(model_path=args.model, n_ctx=N_CTX, n_threads=args.threads,
                          logits_all=True, verbose=False)

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    eog_ids = [t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]

    logits = []
    for name, text in LOGIT_PROMPTS + [("long_genesis", long_prompt(llm))]:
        tokens = tokenize(llm, text)
        scores = eval_logits(llm, tokens)
        # Same case layout as the tiny-model goldens; no full rows here (49152 logits each).
        logits.append({"name": name, "text": text, "tokens": tokens, "top_k": TOP_K,
                       "top": [top_k(row, TOP_K) for row in scores],
                       "full_positions": [], "full": []})
        print(f"logits {name}: {len(tokens)} tokens")

    greedy_cases = []
    for name, question in GREEDY_PROMPTS:
        text = chatml(question)
        tokens = tokenize(llm, text)
        gen = greedy(llm, tokens, GEN_TOKENS)
        first_eog = next((i for i, t in enumerate(gen) if t in eog_ids), -1)
        greedy_cases.append({"name": name, "text": text, "prompt_tokens": tokens,
                             "generated": gen, "first_eog": first_eog,
                             "generated_text": llm.detokenize(gen, special=True).decode("utf-8", "replace")})
        print(f"greedy {name}: first_eog={first_eog} {greedy_cases[-1]['generated_text']!r}")

    doc = {
        "model": os.path.basename(args.model),
        "generator": f"tests/reference/make_model_goldens.py, llama-cpp-python {llama_cpp.__version__}",
        "settings": {"n_ctx": N_CTX, "add_bos": False, "top_k": TOP_K, "decimals": DECIMALS,
                     "gen_tokens": GEN_TOKENS, "eog_ids": eog_ids},
        "logits": logits,
        "greedy": greedy_cases,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
