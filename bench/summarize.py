#!/usr/bin/env python3
"""Markdown table of hyperfine JSON exports: median wall time, GB/s and ratios to the first
command of each file and to named peers. Usage: summarize.py RESULT.json..."""
import json, os, re, sys


def main():
    for path in sys.argv[1:]:
        data = json.load(open(path))["results"]
        name = os.path.basename(path).removesuffix(".json")
        size = layout_bytes(name)
        med = {r["command"]: r["median"] for r in data}
        print(f"\n### {name}" + (f" ({size / 1e9:.2f} GB)" if size else ""))
        print("\n| command | median s | min s | max s | GB/s |")
        print("|---|---|---|---|---|")
        for r in data:
            gbs = f"{size / r['median'] / 1e9:.2f}" if size else ""
            print(f"| `{r['command']}` | {r['median']:.3f} | {r['min']:.3f} | {r['max']:.3f} | {gbs} |")
        print()
        for a, b, label in COLD_RATIOS if name.startswith("cold-") else RATIOS:
            bs = [x for x in b.split(" | ") if x in med]
            if a in med and bs and len(bs) == len(b.split(" | ")):
                print(f"- {label}: {med[a] / max(med[x] for x in bs):.2f}")


RATIOS = [
    ("weightgate hash --blake3-only", "b3sum", "`hash --blake3-only` / `b3sum` (target <= 1.10)"),
    ("openssl dgst -sha256", "weightgate hash", "`openssl dgst -sha256` / `hash` (target >= 1.25 single, >= 1.8 sharded)"),
    ("model_signing sign key", "weightgate hash", "`model_signing sign key` / `hash`"),
    ("sha256sum", "weightgate hash", "`sha256sum` / `hash`"),
    ("weightgate verify", "b3sum", "`verify` / `b3sum` (target <= 1.15)"),
    ("model_signing verify key", "weightgate verify", "`model_signing verify key` / `verify` (target >= 6)"),
    ("weightgate verify --full", "weightgate hash", "`verify --full` / `hash` (target <= 1.10)"),
    ("weightgate attest", "weightgate hash", "`attest` / `hash` (target <= 1.05)"),
    ("weightgate admit", "cp -r SRC DST && sync", "`admit` / `cp -r SRC DST && sync` (target <= 1.2)"),
    ("weightgate admit (s3)", "rclone copy", "`admit` into a SeaweedFS bucket / `rclone copy` to it (target <= 1.2)"),
    ("admit the revision (folder)", "admit the changed shard alone (folder)", "revision with one shard changed / that shard alone, folder store (target <= 1.25)"),
    ("admit the revision (bucket)", "admit the changed shard alone (bucket)", "revision with one shard changed / that shard alone, bucket store (target <= 1.25)"),
    ("weightgate attest --oms-key", "weightgate attest", "`attest --oms-key` / `attest` (target < 1.05)"),
    ("model_signing verify key (model.sig)", "weightgate verify --oms-key", "`model_signing verify key` / `verify --oms-key` (target >= 1.5)"),
    ("openssl dgst -sha256", "weightgate sign-oms --shards", "`openssl dgst -sha256` / `sign-oms --shards` (target >= 1.8)"),
    ("openssl dgst -sha256", "weightgate sign-oms", "`openssl dgst -sha256` / `sign-oms` (files method)"),
    ("model_signing sign key", "weightgate sign-oms --shards", "`model_signing sign key` / `sign-oms --shards`"),
    ("model_signing verify key (model.sig)", "weightgate verify-oms", "`model_signing verify key` / `verify-oms` (target >= 1.5)"),
]

# Page cache dropped before each run (bench/cold.sh). "A | B" divides by the slower of A and B.
COLD_RATIOS = [
    ("weightgate hash", "b3sum | weightgate hash, warm", "`hash` / max(`b3sum`, `hash` warm) (target <= 1.15)"),
    ("weightgate hash --blake3-only", "b3sum", "`hash --blake3-only` / `b3sum` (target <= 1.10)"),
    ("weightgate verify", "b3sum", "`verify` / `b3sum` (target <= 1.10)"),
    ("weightgate hash", "b3sum", "`hash` / `b3sum`"),
    ("weightgate hash, mapped (before)", "weightgate hash", "`hash` through the mappings (before) / `hash`"),
    ("openssl dgst -sha256", "weightgate hash", "`openssl dgst -sha256` / `hash`"),
]


def layout_bytes(name):
    data = os.environ.get("BENCH_DATA_DIR")
    m = re.search(r"(single|sharded)", name)
    if not (data and m):
        return 0
    d = os.path.join(data, m.group(1))
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".safetensors"))


if __name__ == "__main__":
    main()
