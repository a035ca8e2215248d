#!/usr/bin/env python3
"""Tokenizer goldens from llama.cpp (PyPI llama-cpp-python), the independent reference.

Writes into tests/data/tokenizer/:
  qwen2-bpe.gguf, llama-bpe.gguf  vocab-only GGUFs: the first 3000 SmolLM2 tokens plus the merges
                                  whose parts and result lie inside them, with pre 'qwen2' /
                                  'llama-bpe' (llama-bpe adds Llama 3 control tokens and one
                                  user-defined token)
  tiny-spm.gguf                   a 500-piece SentencePiece BPE model (byte fallback) trained
                                  with spm_train on tests/reference/tiny_spm_train.txt, converted
                                  into a vocab-only 'llama' GGUF
  <name>.json                     for each vocabulary (smollm2 = the default model's): every
                                  corpus text with llama.cpp's ids (special=True and False) and
                                  its detokenisation

Usage: make_tokenizer_goldens.py [--model SmolLM2-135M-Instruct.Q4_1.gguf] [--out DIR]
The model path defaults to $TS_MODEL, then assets/models/SmolLM2-135M-Instruct.Q4_1.gguf.
Deterministic: same inputs and library versions give the same files.
"""
import argparse
import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import gguf
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# ---------------------------------------------------------------------------------------------
# The corpus. Entries are str (valid UTF-8) or bytes (possibly invalid UTF-8).
PY_CODE = (
    "def fib(n):\n"
    "    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
    "    a, b = 0, 1\n"
    "\tfor _ in range(n):  # tab-indented on purpose\n"
    "\t    a, b = b, a + b\n"
    "    return a\n\n\n"
    "if __name__ == '__main__':\n"
    "        print(fib(30), f\"{fib(10):>8}\", [x**2 for x in range(5)])\n"
)
C_CODE = (
    "#include <stdio.h>\n\n"
    "static int add(int a, int b) { return a + b; }\n\n"
    "int main(void) {\n"
    "\tint x = add(40, 2);\n"
    "\tif (x != 42 && x >= 0x2A) {\n"
    "\t\tfprintf(stderr, \"bad: %d\\n\", x);\n"
    "  \t\treturn -1;\n"
    "\t}\n"
    "    return 0; // done\r\n"
    "}\n"
)
CORPUS = [
    "",
    " ",
    "  ",
    "Hello world",
    " Hello world",
    "Hello  world",
    "hello, WORLD! How are you today?",
    "The quick brown fox jumps over the lazy dog. It's 5 o'clock; we'll see if they're ready.",
    "I'm sure it's fine. You've got it, he'd say. We'll go. They'RE HERE, DON'T WORRY, I'LL call. 'tis O'Neil's",
    "Größenwahn über Äpfel und Öl; die Straße, der Müßiggang, ÄÖÜ äöü ß ẞ.",
    "Le cœur a ses raisons que la raison ne connaît point. Où est l'hôtel?",
    "Привет, мир! Как дела? Съешь же ещё этих мягких французских булок.",
    "我们今天去公园散步，天气很好。人工智能正在改变世界。",
    "東京は日本の首都です。ひらがなとカタカナ、そして漢字を使います。",
    "مرحبا بالعالم، كيف حالك؟ هذا نص عربي.",
    "שלום עולם",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "สวัสดีครับ ยินดีที่ได้รู้จัก",
    "안녕하세요 세계! 한국어 텍스트입니다.",
    "Emoji: 👋🏽 hi 👨‍👩‍👧‍👦 family 🏳️‍🌈 flag ❤️ love 🇩🇪🇯🇵 and 🤖🧠✨",
    "Smileys😀😃😄 back-to-back😁😆 and text",
    PY_CODE,
    C_CODE,
    "\tindented\n    spaces\n\t  mixed\t\ttabs  \t\n",
    "1234567890123456789",
    "Pi is 3.14159265358979, 1,000,000 people, 2024-01-01T12:34:56Z, v1.2.3, 0x1F, 1e-5.",
    "Digits: ١٢٣ ٤٥٦ and ½ ² ³ ① Ⅻ 𝟙𝟚𝟛",
    "\n",
    "\n\n\n",
    "a\n\n\nb",
    "\r\n",
    "line one\r\nline two\r\n\r\nline four",
    "   leading spaces",
    "trailing spaces   ",
    "a    b     c      d",
    "tabs\t\t\tand\t spaces \t mixed",
    "no\u00a0break\u3000ideographic\u2009thin\u2028sep\u0085nel",
    "!!!???...,,,;;;:::---___***",
    "email: someone@example.com, url: https://example.org/path?q=1&r=2#frag",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
    "text<|endoftext|>more text<|endoftext|>",
    "<|im_start|><|im_end|><|im_start|>",
    "partial <|im_start and im_end|> and <|im_end",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>",
    "a <special_ud> b<special_ud>c",
    "<s>hello</s> <s> world</s>",
    "<unk> is unknown",
    "The selection uses the queries of the current step and the keys stored in the cache before rotation. "
    "When the model answers a question, it streams the answer one token at a time to the user interface.",
    b"abc\xff\xfedef",
    b"\xe4\xb8",
    b"caf\xc3",
    b"\xc3( broken",
    b"x\x80\x80y",
    b"\xed\xa0\x80 surrogate",
    b"\xc0\x80 overlong",
    b"\xf8\x88\x80\x80\x80 five-byte",
    b"good \xe4\xb8\xad\xe6 bad",
]

# ---------------------------------------------------------------------------------------------


def read_vocab(path):
    r = gguf.GGUFReader(path)
    f = r.fields

    def strs(key):
        fld = f[key]
        return [bytes(fld.parts[i]).decode("utf-8") for i in fld.data]

    def ints(key):
        fld = f[key]
        return [int(fld.parts[i][0]) for i in fld.data]

    return strs("tokenizer.ggml.tokens"), ints("tokenizer.ggml.token_type"), strs("tokenizer.ggml.merges")


def add_min_hparams(w, n_vocab):
    # llama.cpp loads hyperparameters even with vocab_only; a minimal, consistent set.
    w.add_context_length(256)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_rope_dimension_count(16)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)


LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA2_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
    "message['content'] | trim + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}"
)


def make_truncated_bpe(model_path, out_path, arch, pre, n_keep=3000, extra=()):
    tokens, types, merges = read_vocab(model_path)
    tokens, types = tokens[:n_keep], types[:n_keep]
    keep = set(tokens)
    kept_merges = []
    for m in merges:
        a, b = m.split(" ", 1)
        if a in keep and b in keep and a + b in keep:
            kept_merges.append(m)
    for text, ttype in extra:
        tokens.append(text)
        types.append(ttype)
    w = gguf.GGUFWriter(out_path, arch)
    add_min_hparams(w, len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(kept_merges)
    if pre == "llama-bpe":
        w.add_bos_token_id(tokens.index("<|begin_of_text|>"))
        w.add_eos_token_id(tokens.index("<|end_of_text|>"))
        w.add_add_bos_token(True)
        w.add_chat_template(LLAMA3_TEMPLATE)
    else:
        w.add_bos_token_id(0)
        w.add_eos_token_id(0)
        w.add_add_bos_token(False)
        w.add_chat_template(QWEN2_TEMPLATE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def parse_spm_model(path):
    """(piece, score, type) from a SentencePiece .model (ModelProto field 1), no protobuf needed."""
    data = open(path, "rb").read()

    def varint(buf, i):
        v = s = 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << s
            s += 7
            if b < 0x80:
                return v, i

    def fields(buf):
        i = 0
        while i < len(buf):
            key, i = varint(buf, i)
            num, wt = key >> 3, key & 7
            if wt == 0:
                v, i = varint(buf, i)
            elif wt == 1:
                v, i = buf[i:i + 8], i + 8
            elif wt == 2:
                n, i = varint(buf, i)
                v, i = buf[i:i + n], i + n
            elif wt == 5:
                v, i = buf[i:i + 4], i + 4
            else:
                raise ValueError("unexpected wire type")
            yield num, v

    pieces = []
    for num, v in fields(data):
        if num != 1:
            continue
        piece, score, ptype = "", 0.0, 1
        for n2, v2 in fields(v):
            if n2 == 1:
                piece = v2.decode("utf-8")
            elif n2 == 2:
                score = struct.unpack("<f", v2)[0]
            elif n2 == 3:
                ptype = v2
        pieces.append((piece, score, ptype))
    return pieces


def make_tiny_spm(out_dir):
    train = os.path.join(HERE, "tiny_spm_train.txt")
    tmp = tempfile.mkdtemp()
    try:
        prefix = os.path.join(tmp, "tiny-spm")
        args = [f"--input={train}", f"--model_prefix={prefix}", "--vocab_size=500", "--model_type=bpe",
                "--byte_fallback=true", "--character_coverage=1.0", "--num_threads=1",
                "--user_defined_symbols=<special_ud>", "--control_symbols=<|eot|>",
                "--split_digits=true"]
        if shutil.which("spm_train"):
            subprocess.run(["spm_train", *args], check=True, capture_output=True)
        else:
            import sentencepiece as spm
            spm.SentencePieceTrainer.train(" ".join(args))
        pieces = parse_spm_model(prefix + ".model")
    finally:
        shutil.rmtree(tmp)
    out_path = os.path.join(out_dir, "tiny-spm.gguf")
    w = gguf.GGUFWriter(out_path, "llama")
    add_min_hparams(w, len(pieces))
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([p for p, _, _ in pieces])
    w.add_token_scores([s for _, s, _ in pieces])
    w.add_token_types([t for _, _, t in pieces])
    w.add_bos_token_id([p for p, _, _ in pieces].index("<s>"))
    w.add_eos_token_id([p for p, _, _ in pieces].index("</s>"))
    w.add_unk_token_id([p for p, _, _ in pieces].index("<unk>"))
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.add_chat_template(LLAMA2_TEMPLATE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------------------------


def goldens(path, name, label, spm):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    buf = ctypes.create_string_buffer(1024)

    def piece(tok, lstrip):
        n = llama_cpp.llama_token_to_piece(vocab, tok, buf, len(buf), lstrip, True)
        assert 0 <= n <= len(buf)
        return buf.raw[:n]

    cases = []
    for text in CORPUS:
        raw = text if isinstance(text, bytes) else text.encode("utf-8")
        special = llm.tokenize(raw, add_bos=False, special=True)
        plain = llm.tokenize(raw, add_bos=False, special=False)
        decoded = b"".join(piece(t, 1 if (spm and i == 0) else 0) for i, t in enumerate(special))
        case = {}
        try:
            case["text"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            case["hex"] = raw.hex()
        case["special"] = special
        case["plain"] = plain
        try:
            case["decoded"] = decoded.decode("utf-8")
        except UnicodeDecodeError:
            case["decoded_hex"] = decoded.hex()
        cases.append(case)
    doc = {
        "vocab": name,
        "source": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}: Llama(vocab_only=True)."
                  "tokenize(add_bos=False, special=True/False); decoded = token_to_piece(special=True) "
                  "concatenated, lstrip 1 on the first token for SentencePiece",
        "n_vocab": llm.n_vocab(),
        "cases": cases,
    }
    with open(os.path.join(OUT, label + ".json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    del llm


def main():
    global OUT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("TS_MODEL") or
                    os.path.join(ROOT, "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/data/tokenizer"))
    a = ap.parse_args()
    OUT = a.out
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(a.model):
        sys.exit(f"model not found: {a.model} (set TS_MODEL or pass --model)")

    make_truncated_bpe(a.model, os.path.join(OUT, "qwen2-bpe.gguf"), "qwen2", "qwen2")
    make_truncated_bpe(a.model, os.path.join(OUT, "llama-bpe.gguf"), "llama", "llama-bpe", extra=[
        ("<|begin_of_text|>", 3), ("<|end_of_text|>", 3), ("<|start_header_id|>", 3),
        ("<|end_header_id|>", 3), ("<|eot_id|>", 3), ("<special_ud>", 4)])
    make_tiny_spm(OUT)

    goldens(a.model, os.path.basename(a.model), "smollm2", spm=False)
    goldens(os.path.join(OUT, "qwen2-bpe.gguf"), "qwen2-bpe.gguf", "qwen2-bpe", spm=False)
    goldens(os.path.join(OUT, "llama-bpe.gguf"), "llama-bpe.gguf", "llama-bpe", spm=False)
    goldens(os.path.join(OUT, "tiny-spm.gguf"), "tiny-spm.gguf", "tiny-spm", spm=True)
    for f in sorted(os.listdir(OUT)):
        print(f"{f}: {os.path.getsize(os.path.join(OUT, f))} bytes")


if __name__ == "__main__":
    main()
