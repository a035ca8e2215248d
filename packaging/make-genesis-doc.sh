#!/usr/bin/env bash
# Regenerates assets/docs/genesis-kjv.txt from the Debian package bible-kjv-text
# (King James Version, public domain) with the `bible` tool from bible-kjv:
#   apt-get install bible-kjv (or packaging/install-deps.sh --with-docs)
# Output: a title header, then "Chapter N" headings and one "chapter:verse text" line per verse.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/assets/docs/genesis-kjv.txt}"

command -v bible >/dev/null || { echo "error: 'bible' not found; apt-get install bible-kjv (or packaging/install-deps.sh --with-docs)" >&2; exit 1; }

bible -l0 'Gen1:1-50:26' | python3 -c '
import re, sys
out = ["THE FIRST BOOK OF MOSES, CALLED GENESIS",
       "The Holy Bible, King James Version (public domain).",
       "Text from the Debian package bible-kjv-text; one verse per line as chapter:verse.",
       ""]
chapter = None; verses = 0
for line in sys.stdin:
    line = line.rstrip()
    m = re.fullmatch(r"Genesis (\d+)", line)
    if m:
        chapter = int(m.group(1)); out += ["", f"Chapter {chapter}", ""]; continue
    m = re.fullmatch(r"\s+(\d+) (.+)", line)
    if m:
        out.append(f"{chapter}:{m.group(1)} {m.group(2).strip()}"); verses += 1; continue
    if line.strip():
        sys.exit(f"unexpected line: {line!r}")
if chapter != 50 or verses != 1533:
    sys.exit(f"expected 50 chapters / 1533 verses, got {chapter} / {verses}")
sys.stdout.write("\n".join(out).replace("\n\n\n", "\n\n") + "\n")
' > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT ($(wc -c <"$OUT") bytes, $(wc -w <"$OUT") words)"
