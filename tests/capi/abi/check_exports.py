#!/usr/bin/env python3
"""Checks that libtokenselect exports exactly the functions the header declares with TS_API.

Usage: check_exports.py NM LIBRARY HEADER. Compares the library's defined dynamic text symbols
(nm -D --defined-only) with the TS_API declarations; also rejects exported data symbols.
"""
import re
import subprocess
import sys


def header_functions(path):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # comments may mention TS_API
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    # "TS_API <return type> name(": the identifier right before the first parenthesis.
    return set(re.findall(r"\bTS_API\b[^;(]*?\b(\w+)\s*\(", text))


def library_symbols(nm, path):
    out = subprocess.run([nm, "-D", "--defined-only", path], check=True, capture_output=True, text=True).stdout
    text, other = set(), set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        kind, name = fields[-2], fields[-1].split("@")[0]  # drop the version: ts_x@@TOKENSELECT_0
        if kind in "TtWiI":
            text.add(name)
        elif kind != "A":  # "A" is the version node itself (TOKENSELECT_0)
            other.add(f"{name} ({kind})")
    return text, other


def main():
    nm, lib, header = sys.argv[1:4]
    declared = header_functions(header)
    exported, data = library_symbols(nm, lib)
    missing, extra = sorted(declared - exported), sorted(exported - declared)
    for name in missing:
        print(f"declared with TS_API but not exported: {name}")
    for name in extra:
        print(f"exported but not declared with TS_API: {name}")
    for name in sorted(data):
        print(f"exported data symbol: {name}")
    if missing or extra or data or not declared:
        print(f"FAIL: {lib} vs {header}")
        return 1
    print(f"OK: {len(exported)} exported functions match the {len(declared)} TS_API declarations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
