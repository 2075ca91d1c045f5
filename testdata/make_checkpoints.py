#!/usr/bin/env python3
"""Writes the small checkpoints under testdata/ (run from anywhere; output is committed).

- checkpoints/tiny/         a valid 2-shard safetensors checkpoint with index and config
- checkpoints/single.safetensors   a valid one-file checkpoint
- headers/fail_*.safetensors + .expected   malformed single files and the message they must give
- checkpoints/fail_*/ + fail_*.expected    malformed sharded checkpoints
Deterministic: tensor bytes come from a counter, not randomness.
"""
import json, os, shutil, struct

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = {"F32": 4, "BF16": 2, "F16": 2, "U8": 1, "I64": 8}


def data_bytes(n, seed):
    return bytes((seed * 31 + i * 7) & 0xFF for i in range(n))


def header_bytes(tensors, metadata={"format": "pt"}):
    hdr = {"__metadata__": metadata} if metadata is not None else {}
    off = 0
    for name, dtype, shape in tensors:
        n = SIZES[dtype]
        for d in shape:
            n *= d
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return h, off


def safetensors(tensors, seed=1):
    h, n = header_bytes(tensors)
    return struct.pack("<Q", len(h)) + h + data_bytes(n, seed)


def raw(header_text, data_len, length=None):
    h = header_text.encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + bytes(data_len)


def write(path, content):
    path = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(content, bytes) else "w") as f:
        f.write(content)


SHARD1 = [("model.embed.weight", "F32", [16, 8]), ("model.layers.0.attn.weight", "BF16", [8, 8])]
SHARD2 = [("model.layers.0.mlp.weight", "BF16", [8, 16]), ("lm_head.weight", "F32", [8, 4])]
N1, N2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"


def tiny(dirname, weight_map=None, shard2=SHARD2):
    shutil.rmtree(os.path.join(HERE, dirname), ignore_errors=True)
    write(f"{dirname}/{N1}", safetensors(SHARD1, 1))
    write(f"{dirname}/{N2}", safetensors(shard2, 2))
    if weight_map is None:
        weight_map = {n: N1 for n, _, _ in SHARD1} | {n: N2 for n, _, _ in shard2}
    total = sum(header_bytes(SHARD1)[1:]) + sum(header_bytes(shard2)[1:])
    write(f"{dirname}/model.safetensors.index.json",
          json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    write(f"{dirname}/config.json", json.dumps({"model_type": "tiny", "hidden_size": 8}, indent=2) + "\n")


one = '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}'


def hostile_headers():
    """More attacks on the header parser; the expected text is the distinctive part of the error."""
    t = lambda body: '{"a":' + body + '}'
    ok_tensor = '{"dtype":"U8","shape":[2],"data_offsets":[0,2]}'
    deep = '{"__metadata__":' + '[' * 100_000 + ']' * 100_000 + ',"a":' + ok_tensor + '}'
    return {
        "empty_file": (b"", "too short for the 8-byte header length"),
        "header_length_zero": (raw("", 2, length=0), "header is empty"),
        "header_length_u64_max": (raw(one, 2, length=2**64 - 1), "exceeds the cap"),
        "header_is_array": (raw("[1,2]" + " " * 3, 0), "must start with `{`"),
        "header_is_string": (raw('"a"', 0), "must start with `{`"),
        "header_bom": (b"\x0b\x00\x00\x00\x00\x00\x00\x00" + b"\xef\xbb\xbf" + b'{"a":1}' + bytes(1), "must start with `{`, found byte 0xef"),
        "header_invalid_utf8": (struct.pack("<Q", 12) + b'{"a\xff":{}} ' + bytes(2), "header is not valid UTF-8"),
        "header_nul_padding": (raw(one + "\u0000" * 0, 2)[:8] and struct.pack("<Q", len(one) + 3) + one.encode() + b"\x00\x00\x00" + bytes(2), "header JSON"),
        "header_trailing_garbage": (raw(one + "xyz", 2), "header JSON"),
        "header_comment": (raw('{/*x*/"a":' + ok_tensor + '}', 2), "header JSON"),
        "deep_nesting": (raw(deep, 2), "header JSON"),
        "tensor_not_object": (raw(t("5"), 0), "header JSON"),
        "missing_dtype": (raw(t('{"shape":[2],"data_offsets":[0,2]}'), 2), "header JSON"),
        "missing_shape": (raw(t('{"dtype":"U8","data_offsets":[0,2]}'), 2), "header JSON"),
        "missing_offsets": (raw(t('{"dtype":"U8","shape":[2]}'), 2), "header JSON"),
        "unknown_tensor_field": (raw(t('{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":1}'), 2), "header JSON"),
        "duplicate_tensor_field": (raw(t('{"dtype":"U8","dtype":"U8","shape":[2],"data_offsets":[0,2]}'), 2), "header JSON"),
        "offsets_reversed": (raw(t('{"dtype":"U8","shape":[2],"data_offsets":[2,0]}'), 2), "tensor `a`"),
        "offsets_three": (raw(t('{"dtype":"U8","shape":[2],"data_offsets":[0,1,2]}'), 2), "header JSON"),
        "offsets_negative": (raw(t('{"dtype":"U8","shape":[2],"data_offsets":[-1,1]}'), 2), "header JSON"),
        "offsets_float": (raw(t('{"dtype":"U8","shape":[2],"data_offsets":[0.0,2.0]}'), 2), "header JSON"),
        "offsets_past_u64": (raw(t('{"dtype":"U8","shape":[2],"data_offsets":[0,18446744073709551616]}'), 2), "header JSON"),
        "offsets_u64_max": (raw(t('{"dtype":"U8","shape":[2],"data_offsets":[0,18446744073709551615]}'), 2), "tensor `a`"),
        "shape_negative": (raw(t('{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}'), 2), "header JSON"),
        "shape_float": (raw(t('{"dtype":"U8","shape":[2.5],"data_offsets":[0,2]}'), 2), "header JSON"),
        "shape_overflow": (raw(t('{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,2]}'), 2), "tensor `a`"),
        "dtype_lowercase": (raw(t('{"dtype":"u8","shape":[2],"data_offsets":[0,2]}'), 2), "unknown dtype `u8`"),
        "metadata_not_object": (raw('{"__metadata__":"x","a":' + ok_tensor + '}', 2), "`__metadata__`"),
        "metadata_nested_object": (raw('{"__metadata__":{"k":{"a":"b"}},"a":' + ok_tensor + '}', 2), "`__metadata__` key `k`"),
        "duplicate_metadata": (raw('{"__metadata__":{"k":"v"},"__metadata__":{"k":"v"},"a":' + ok_tensor + '}', 2), "duplicate"),
        "duplicate_metadata_key": (raw('{"__metadata__":{"k":"v","k":"w"},"a":' + ok_tensor + '}', 2), "duplicate"),
    }


def main():
    tiny("checkpoints/tiny")
    write("checkpoints/single.safetensors", safetensors(SHARD1 + SHARD2, 3))

    headers = {
        "truncated": (safetensors(SHARD1)[:-5], "tensors cover 640 data bytes but the file holds 635"),
        "header_past_end": (raw(one, 2, length=4096), "header length 4096 runs past the end"),
        "header_over_cap": (raw(one, 2, length=25_000_001), "exceeds the cap of 25000000"),
        "invalid_json": (raw('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}', 2), "header JSON"),
        "leading_whitespace": (raw(" " + one[:-0 or None], 2), "must start with `{`, found byte 0x20"),
        "duplicate_tensor": (raw('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}', 4), "duplicate tensor name `a`"),
        "overlapping_offsets": (raw('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', 3), "tensor `b` starts at 1 but tensor `a` ends at 2 (overlap)"),
        "gapped_offsets": (raw('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}', 6), "tensor `b` starts at 4 but tensor `a` ends at 2 (gap)"),
        "offsets_out_of_range": (raw(one, 1), "offsets out of range"),
        "trailing_bytes": (raw(one, 9), "trailing bytes"),
        "shape_dtype_mismatch": (raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,2]}}', 2), "tensor `a`: shape [2] x F32 needs 8 bytes but data_offsets [0, 2] span 2"),
        "unknown_dtype": (raw('{"a":{"dtype":"F13","shape":[2],"data_offsets":[0,2]}}', 2), "tensor `a`: unknown dtype `F13`"),
        "metadata_not_strings": (raw('{"__metadata__":{"step":1000},' + one[1:], 2), "`__metadata__` key `step`"),
        "too_short": (b"\x05\x00", "too short for the 8-byte header length"),
    }
    headers |= hostile_headers()
    for name, (content, expected) in headers.items():
        write(f"headers/fail_{name}.safetensors", content)
        write(f"headers/fail_{name}.expected", expected + "\n")

    wm = {n: N1 for n, _, _ in SHARD1} | {n: N2 for n, _, _ in SHARD2}
    cases = {
        "index_missing_shard": (wm | {"lm_head.weight": "model-00003-of-00003.safetensors"},
                                "tensor `lm_head.weight` is mapped to shard `model-00003-of-00003.safetensors`, which is not a safetensors file in the checkpoint"),
        "index_missing_tensor": (wm | {"model.ghost.weight": N1},
                                 "tensor `model.ghost.weight` is mapped to `model-00001-of-00002.safetensors` but that shard's header has no such tensor"),
        "index_unmapped_tensor": ({k: v for k, v in wm.items() if k != "lm_head.weight"},
                                  "tensor `lm_head.weight` in `model-00002-of-00002.safetensors` is missing from `weight_map`"),
        "index_wrong_shard": (wm | {"lm_head.weight": N1},
                              "that shard's header has no such tensor"),
        "index_dotdot_path": (wm | {"lm_head.weight": "../" + N2}, "shard `../model-00002-of-00002.safetensors`: `..` path component"),
        "index_absolute_path": (wm | {"lm_head.weight": "/etc/passwd"}, "absolute path"),
    }
    for name, (weight_map, expected) in cases.items():
        tiny(f"checkpoints/fail_{name}", weight_map)
        write(f"checkpoints/fail_{name}.expected", expected + "\n")
    # The same tensor in both shards.
    tiny("checkpoints/fail_index_tensor_in_two_shards", None, SHARD2 + [("model.embed.weight", "F32", [16, 8])])
    write("checkpoints/fail_index_tensor_in_two_shards.expected",
          "tensor `model.embed.weight` is in both `model-00001-of-00002.safetensors` and `model-00002-of-00002.safetensors`\n")


if __name__ == "__main__":
    main()
