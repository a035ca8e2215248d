#!/usr/bin/env python3
"""Asks a question about a document, streams the answer, then shows which passages of the
document the attention selected most (TokenSelect's heatmap, mapped back to the text).

    python3 capi/python/example_chat.py --question "What is the dog called?"
    python3 capi/python/example_chat.py --doc assets/docs/genesis-kjv.txt --question "How old was Noah?"

Selection only starts once the cache holds more than n_init + n_local + k tokens (below that every
token is attended). The defaults here (n_init 16, n_local 128, k 256) make it active for the
~2,100-token short story; the library's own defaults (128/512/2048) suit long documents.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenselect as ts  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def top_passages(counts, first, offsets, text_bytes, window, top):
    """The `top` non-overlapping windows of `window` document tokens with the highest summed
    selection counts, as (score, start byte, end byte), in document order."""
    doc_counts = counts[first:first + len(offsets)]
    sums = [sum(doc_counts[i:i + window]) for i in range(0, len(doc_counts), window)]
    best = sorted(range(len(sums)), key=lambda w: sums[w], reverse=True)[:top]
    passages = []
    for w in sorted(best):
        start_tok, end_tok = w * window, min((w + 1) * window, len(offsets))
        end_byte = offsets[end_tok] if end_tok < len(offsets) else len(text_bytes)
        passages.append((sums[w], offsets[start_tok], end_byte))
    return passages


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--doc", default=os.path.join(ROOT, "assets/docs/short-story.txt"))
    ap.add_argument("--question", default="What is the name of Maren's dog?")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=0, help="0: all hardware threads")
    ap.add_argument("--n-init", type=int, default=16)
    ap.add_argument("--n-local", type=int, default=128)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--window", type=int, default=32, help="passage length in tokens")
    ap.add_argument("--top", type=int, default=3, help="passages to show")
    args = ap.parse_args()

    with open(args.doc, "rb") as f:
        text_bytes = f.read()
    select = ts.SelectSettings(n_init=args.n_init, n_local=args.n_local, k=args.k)
    print(f"libtokenselect {ts.version()} ({ts.library_path()})")
    print(f"settings: attention tokenselect, n_init {select.n_init}, n_local {select.n_local}, k {select.k}, "
          f"chunk {select.n_local}, greedy, max {args.max_tokens} tokens")

    def progress(done, total):
        print(f"\r{label} {done}/{total}", end="", file=sys.stderr, flush=True)

    label = "loading (bytes)"
    with ts.Model.load(args.model, progress=progress) as model:
        print(file=sys.stderr)
        info = model.info
        print(f"model: {info.name or os.path.basename(args.model)} ({info.arch}, {info.n_layer} layers, "
              f"chat format {info.chat_format or '?'})")
        n_doc = len(model.tokenize(text_bytes))
        with model.session(n_ctx=n_doc + 1024, n_threads=args.threads, chunk=select.n_local,
                           select=select) as s:
            s.set_recording(True)
            doc_id = s.add_document(text_bytes, title=os.path.basename(args.doc))
            s.add_message(ts.Role.USER, args.question)
            label = "prefill (tokens)"
            t0 = time.time()
            s.prefill(progress=progress)
            print(f"\n{os.path.basename(args.doc)}: {n_doc} tokens, prompt prefilled in {time.time() - t0:.1f} s",
                  file=sys.stderr)
            # Counts cover the whole answer, its prompt's prefill included; keep the prefill's part to
            # subtract it, so that the passages shown are those selected while answering.
            prefill_counts = s.selection_counts()

            print(f"\nQ: {args.question}\nA: ", end="", flush=True)
            for piece in s.stream(max_tokens=args.max_tokens, temperature=0.0):
                print(piece, end="", flush=True)
            print(f"\n[{s.stop_reason.name.lower()}]")

            stats = s.stats
            print(f"\nlayer-steps with selection {stats.selecting_steps}, dense {stats.dense_steps}; "
                  f"decode {stats.decode_tokens / max(stats.decode_seconds, 1e-9):.1f} tok/s")
            counts = s.selection_counts()
            answer_counts = [c - (prefill_counts[i] if i < len(prefill_counts) else 0) for i, c in enumerate(counts)]
            first, offsets = s.document_tokens(doc_id)
            if not offsets or not any(answer_counts[first:first + len(offsets)]):
                print("no selections recorded in the document (is it shorter than n_init + n_local + k?)")
                return
            print(f"top passages ({args.window}-token windows; score = selections of their tokens, summed over "
                  f"layers and answer steps; the sinks and the local window are always attended and not counted):")
            for score, start, end in top_passages(answer_counts, first, offsets, text_bytes, args.window, args.top):
                snippet = " ".join(text_bytes[start:end].decode("utf-8", "replace").split())
                print(f"  passage bytes {start}-{end}, score {score}: \"{snippet}\"")

if __name__ == "__main__":
    main()
