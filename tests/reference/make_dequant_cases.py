#!/usr/bin/env python3
"""Write dequantisation reference cases for check_dequant into a GGUF file.

For each weight type T the file holds "T.q" (raw blocks of type T) and "T.expected" (F32, what
gguf.quants.dequantize makes of them). Types gguf can quantise get blocks from
gguf.quants.quantize of random floats; K-quants get random bytes with finite, sane d/dmin.
Float types include specials (inf, quiet NaN, subnormals, signed zero).

Usage: make_dequant_cases.py OUT.gguf   (exit 77 = skip: numpy or gguf missing)
"""
import sys

try:
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import dequantize, quantize
except ImportError as e:  # the checker test is then skipped, not failed
    print(f"skipping: {e}", file=sys.stderr)
    sys.exit(77)

ROWS, COLS = 4, 1024  # COLS a multiple of every block size
rng = np.random.default_rng(20240611)


def random_floats():
    x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    x[0, :32] = 0.0  # an all-zero block (d = 0)
    x[1, 5] = 40.0   # an outlier
    return x


def half_bytes(lo, hi, count):
    return rng.uniform(lo, hi, count).astype(np.float16).view(np.uint8).reshape(count, 2)


def k_quant_blocks(qtype):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    nblocks = ROWS * COLS // block
    raw = rng.integers(0, 256, (nblocks, size), dtype=np.uint8)
    if qtype in (Q.Q4_K, Q.Q5_K):
        raw[:, 0:2] = half_bytes(1e-4, 1e-2, nblocks)   # d
        raw[:, 2:4] = half_bytes(0.0, 1e-2, nblocks)    # dmin
    elif qtype == Q.Q6_K:
        raw[:, 208:210] = half_bytes(-1e-2, 1e-2, nblocks)
    return raw.reshape(ROWS, -1)


def f16_bits():
    bits = rng.integers(0, 1 << 16, ROWS * COLS, dtype=np.uint32).astype(np.uint16)
    # No signalling NaNs: numpy's hardware half->float cast may quiet them (F16C does).
    exp_all_ones = (bits & 0x7C00) == 0x7C00
    man = bits & 0x03FF
    bits = np.where(exp_all_ones & (man != 0), bits | 0x0200, bits).astype(np.uint16)
    specials = [0x0000, 0x8000, 0x0001, 0x03FF, 0x8001, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00,
                0xFE00, 0x7E01, 0x3C00]
    bits[: len(specials)] = specials
    return bits.reshape(ROWS, COLS)


def bf16_bits():
    bits = rng.integers(0, 1 << 16, ROWS * COLS, dtype=np.uint32).astype(np.uint16)
    specials = [0x0000, 0x8000, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x7F81, 0x3F80, 0x807F]
    bits[: len(specials)] = specials
    return bits.reshape(ROWS, COLS)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    w = gguf.GGUFWriter(sys.argv[1], "dequant-cases")

    def add(name, raw_u8, qtype):
        raw_u8 = np.ascontiguousarray(raw_u8, dtype=np.uint8)
        expected = np.asarray(dequantize(raw_u8, qtype), dtype=np.float32).reshape(ROWS, COLS)
        w.add_tensor(f"{name}.q", raw_u8, raw_dtype=qtype)
        w.add_tensor(f"{name}.expected", expected)

    f32 = random_floats()
    f32[2, :4] = [np.inf, -np.inf, np.float32(1e-40), -0.0]
    add("F32", f32.view(np.uint8), Q.F32)
    add("F16", f16_bits().view(np.uint8), Q.F16)
    add("BF16", bf16_bits().view(np.uint8), Q.BF16)
    for qtype in (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0):
        add(qtype.name, quantize(random_floats(), qtype), qtype)
    for qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
        add(qtype.name, k_quant_blocks(qtype), qtype)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
