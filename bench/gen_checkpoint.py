#!/usr/bin/env python3
"""Writes the benchmark checkpoints (valid safetensors) outside the repository.

  single/model.safetensors          one 4 GiB file (header + tensors + exact total of 4 GiB)
  sharded/model-0000{1,2,3}-of-00003.safetensors + model.safetensors.index.json + config.json
                                    ~4 GiB over 3 shards, 300 BF16/F32 tensors
  with --large SHARDS MB: only large/, SHARDS shards of about MB megabytes each (8 BF16 tensors
                                    per shard) + index: a checkpoint larger than memory

Tensor bytes repeat one random 64 MiB block: hash speed does not depend on content and nothing
on the path compresses. Existing files of the right size are kept.
Usage: gen_checkpoint.py DATA_DIR [--large SHARDS MB]
"""
import json, os, struct, sys

BLOCK = os.urandom(64 << 20)


def write_safetensors(path, tensors, metadata=None, pad_to=None):
    """tensors: list of (name, dtype, shape). pad_to: total file size to hit by padding the header."""
    sizes = {"BF16": 2, "F32": 4, "U8": 1}
    hdr = {"__metadata__": metadata or {"format": "pt"}}
    off = 0
    for name, dtype, shape in tensors:
        n = sizes[dtype]
        for d in shape:
            n *= d
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad_to is not None:
        pad = pad_to - 8 - len(h) - off
        assert pad >= 0, "pad_to too small"
        h += b" " * pad
    else:
        h += b" " * ((8 - len(h) % 8) % 8)
    total = 8 + len(h) + off
    if os.path.exists(path) and os.path.getsize(path) == total:
        return total
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        left = off
        while left:
            chunk = BLOCK[: min(left, len(BLOCK))]
            f.write(chunk)
            left -= len(chunk)
    os.rename(tmp, path)
    return total


def write_large(data, shards, mb):
    """SHARDS shards of about MB * 1e6 bytes: 8 BF16 tensors of 4096 rows each."""
    os.makedirs(f"{data}/large", exist_ok=True)
    cols = mb * 1_000_000 // (8 * 4096 * 2)
    weight_map, total_size = {}, 0
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        shard = [(f"model.layers.{s}.w{i}", "BF16", [4096, cols]) for i in range(8)]
        write_safetensors(f"{data}/large/{name}", shard)
        for t, _, _ in shard:
            weight_map[t] = name
        total_size += 8 * 4096 * cols * 2
    with open(f"{data}/large/model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {"total_size": total_size}, "weight_map": weight_map}, f, indent=2)


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "/work/benchdata"
    if len(sys.argv) == 5 and sys.argv[2] == "--large":
        write_large(data, int(sys.argv[3]), int(sys.argv[4]))
        return
    quick = os.environ.get("BENCH_QUICK") == "1"
    scale = 8 if quick else 1  # quick: 512 MiB instead of 4 GiB
    os.makedirs(f"{data}/single", exist_ok=True)
    os.makedirs(f"{data}/sharded", exist_ok=True)

    # Single file: 32 tensors of 4096 x 16368 BF16 (~128 MiB each) minus room for the header,
    # padded to exactly 4 GiB.
    target = (4 << 30) // scale
    rows = 16368 // scale
    tensors = [(f"model.layers.{i}.weight", "BF16", [4096, rows]) for i in range(32)]
    write_safetensors(f"{data}/single/model.safetensors", tensors, pad_to=target)

    # Three shards, 100 tensors each, mixed shapes, ~1.37 GB per shard.
    weight_map, total_size = {}, 0
    for s in range(3):
        name = f"model-{s + 1:05d}-of-00003.safetensors"
        shard = []
        for i in range(100):
            layer = s * 100 + i
            if i % 10 == 0:
                shard.append((f"model.layers.{layer}.input_layernorm.weight", "F32", [4096]))
            else:
                shard.append((f"model.layers.{layer}.mlp.weight", "BF16", [4096, 1862 // scale]))
        write_safetensors(f"{data}/sharded/{name}", shard)
        for t, dtype, shape in shard:
            weight_map[t] = name
            n = {"BF16": 2, "F32": 4}[dtype]
            for d in shape:
                n *= d
            total_size += n
    with open(f"{data}/sharded/model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {"total_size": total_size}, "weight_map": weight_map}, f, indent=2)
    with open(f"{data}/sharded/config.json", "w") as f:
        json.dump({"model_type": "bench", "num_hidden_layers": 300}, f)


if __name__ == "__main__":
    main()
