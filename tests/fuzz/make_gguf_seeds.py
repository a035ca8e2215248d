#!/usr/bin/env python3
"""Writes the small GGUF seed corpus for fuzz_gguf into corpus/gguf/ (kept under 10 KB).

Seeds come from the independent `gguf` Python writer, so ts_test_gguf also uses them as a
cross-check: files named valid_* must parse, the others (deliberate breakage) must not.
Usage: python3 tests/fuzz/make_gguf_seeds.py
"""
import os
import struct

import numpy as np
import gguf

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "gguf")


def write(name, build):
    path = os.path.join(OUT, name)
    w = gguf.GGUFWriter(path, "llama")
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def tiny_model(w):
    w.add_block_count(1)
    w.add_embedding_length(32)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["<s>", "a", "b", "ab", "\u0120x"])
    w.add_token_types([3, 1, 1, 1, 1])
    w.add_token_merges(["a b"])
    w.add_bool("tokenizer.ggml.add_bos_token", False)
    w.add_array("test.f32s", [0.5, -1.0])
    w.add_int64("test.i64", -3)
    w.add_float64("test.f64", 2.5)
    w.add_tensor("output_norm.weight", np.arange(32, dtype=np.float32))
    w.add_tensor("token_embd.weight", np.ones((5, 32), dtype=np.float16))
    # A Q8_0 matrix given as raw bytes: 2 rows of 32 elements = 2 blocks of 34 bytes.
    q8 = np.zeros((2, 34), dtype=np.uint8)
    w.add_tensor("blk.0.attn_q.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)


def metadata_only(w):
    w.add_string("general.name", "seed")
    w.add_uint32("general.alignment", 64)
    w.add_array("test.u8s", [1, 2, 3])


def main():
    os.makedirs(OUT, exist_ok=True)
    model = write("valid_tiny_model.gguf", tiny_model)
    write("valid_metadata_only.gguf", metadata_only)

    data = open(model, "rb").read()
    # Deliberately broken variants: cut in the tensor infos, and a byte-swapped version.
    with open(os.path.join(OUT, "bad_truncated.gguf"), "wb") as f:
        f.write(data[: len(data) * 2 // 3])
    with open(os.path.join(OUT, "bad_big_endian.gguf"), "wb") as f:
        f.write(data[:4] + struct.pack(">I", 3) + data[8:])

    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    assert total < 10 * 1024, total
    print(f"wrote {len(os.listdir(OUT))} seeds, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
