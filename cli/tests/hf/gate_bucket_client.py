"""The unchanged huggingface_hub client against a gate over a bucket (HF_ENDPOINT), proxying or
redirecting to presigned URLs. Usage: HF_ENDPOINT=URL gate_bucket_client.py MODE CHECKPOINT"""
import os
import sys
import tempfile

from huggingface_hub import hf_hub_download, snapshot_download

mode, checkpoint = sys.argv[1:3]


def same(path, name):
    with open(path, "rb") as a, open(os.path.join(checkpoint, name), "rb") as b:
        assert a.read() == b.read(), f"{mode}: {name}: bytes differ from the admitted file"


with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as whole:
    p = hf_hub_download("lab/model", "weights.bin", cache_dir=one)
    same(p, "weights.bin")
    snap = snapshot_download("lab/model", cache_dir=whole)
    for name in ["config.json", "weights.bin", "model-00001-of-00002.safetensors"]:
        same(os.path.join(snap, name), name)
    assert os.path.exists(os.path.join(snap, "weightgate.att")), os.listdir(snap)
print(f"ok: {mode}: hf_hub_download and snapshot_download bring the admitted bytes")
