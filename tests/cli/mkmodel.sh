#!/usr/bin/env bash
# `tokenselect mkmodel`: for each weight type, a 2-layer synthetic SmolLM2-shape model that the
# library loads and generates with, whose tensors gguf-py (an independent reader) dequantises to
# finite weights of the intended size (|w| < 0.05, norms 1); bad arguments and unwritable paths
# fail with a message and leave no file.
# Usage: mkmodel.sh TOKENSELECT_BINARY [PYTHON]
set -uo pipefail
CLI="$1" PY="${2:-python3}"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/ts-mkmodel.XXXXXX")"
trap 'rm -rf "$DIR"' EXIT
FAILED=0
fail() { echo "FAIL $*"; FAILED=1; }

for type in f16 q8_0 q4_0; do
  m="$DIR/syn-$type.gguf"
  "$CLI" mkmodel --shape smollm2-135m --type "$type" --layers 2 --seed 7 -o "$m" 2>/dev/null || fail "$type: mkmodel exit $?"
  [[ -f $m.part ]] && fail "$type: left $m.part"
  out="$("$CLI" run -m "$m" -n 5 --temp 0 -p "Hello there" 2>&1)" || fail "$type: run failed: $out"
  [[ $out == *"decode 5 tokens"* ]] || fail "$type: no 5 decoded tokens in: $out"
  if "$PY" -c "import gguf" 2>/dev/null; then
    "$PY" - "$m" "$type" <<'PYEOF' || fail "$type: gguf-py check"
import sys, numpy as np, gguf
r = gguf.GGUFReader(sys.argv[1])
arch = r.fields["general.architecture"]
assert bytes(arch.parts[arch.data[0]]) == b"llama"
assert len(r.fields["tokenizer.ggml.tokens"].data) == 49152
names = [t.name for t in r.tensors]
assert names[:2] == ["token_embd.weight", "output_norm.weight"] and "output.weight" not in names, names[:3]
assert len(names) == 2 + 2 * 9, len(names)
want = {"f16": "F16", "q8_0": "Q8_0", "q4_0": "Q4_0"}[sys.argv[2]]
for t in r.tensors:
    x = gguf.quants.dequantize(t.data, t.tensor_type)
    assert np.isfinite(x).all(), t.name
    if "norm" in t.name:
        assert t.tensor_type.name == "F32" and (x == 1).all(), t.name
    else:
        assert t.tensor_type.name == want, (t.name, t.tensor_type.name)
        assert 0 < np.abs(x).max() < 0.05 and 0.005 < x.std() < 0.03, (t.name, np.abs(x).max(), x.std())
print(f"ok   {sys.argv[2]}: gguf-py reads {len(names)} tensors")
PYEOF
  else
    echo "skip gguf-py check ($PY has no gguf)"
  fi
done

out="$("$CLI" mkmodel --shape gpt-9 -o "$DIR/x.gguf" 2>&1)" && fail "unknown shape accepted"
[[ $out == *"gpt-9"* ]] || fail "unknown shape: message does not name it: $out"
out="$("$CLI" mkmodel --type q4_0 --layers 1 -o "$DIR/no-such-dir/x.gguf" 2>&1)" && fail "unwritable path accepted"
[[ $out == *"cannot create"* ]] || fail "unwritable path: $out"
[[ -e $DIR/no-such-dir ]] && fail "unwritable path: something was created"
exit $FAILED
