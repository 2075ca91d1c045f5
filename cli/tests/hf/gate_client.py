"""The real huggingface_hub client against a running `weightgate serve`.

Driven by cli/tests/gate_server.rs, which admits the models, starts the server and passes:
  argv: ENDPOINT SERVER_PID POLICY_PATH REVOKED_POLICY_PATH CHECKPOINTS_DIR STORE_DIR
Every check is an assert; any failure exits non-zero with the traceback.
"""
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

endpoint, pid, policy, revoked_policy, checkpoints, store = sys.argv[1:7]
os.environ.update({
    "HF_ENDPOINT": endpoint,
    "HF_HUB_DISABLE_XET": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "HF_HUB_ETAG_TIMEOUT": "10",
})
# Every cache and HF_HOME under one folder, removed at exit.
SCRATCH = tempfile.mkdtemp(prefix="weightgate-gate-client-")
atexit.register(shutil.rmtree, SCRATCH, True)
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="hf-home-", dir=SCRATCH)

import huggingface_hub  # noqa: E402  (constants are read at import time)
from huggingface_hub import hf_hub_download, snapshot_download  # noqa: E402
from huggingface_hub.errors import GatedRepoError  # noqa: E402


def fresh_cache():
    return tempfile.mkdtemp(prefix="hf-cache-", dir=SCRATCH)


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def refused(fn, *want):
    try:
        fn()
    except GatedRepoError as e:
        text = str(e)
        for w in want:
            assert w in text, f"GatedRepoError without {w!r}: {text}"
        return text
    raise AssertionError("download was not refused")


tiny = os.path.join(checkpoints, "tiny")

# 1. An admitted, allowed model: single files and a whole snapshot, byte for byte.
for name in ["config.json", "model-00002-of-00002.safetensors"]:
    p = hf_hub_download("lab/tiny", name, cache_dir=fresh_cache())
    assert same_bytes(p, os.path.join(tiny, name)), name
snap = snapshot_download("lab/tiny", cache_dir=fresh_cache())
got = sorted(os.listdir(snap))
# The attestation travels with the weights: it is a file of the revision.
want = sorted(os.listdir(tiny))
assert "weightgate.att" in want and got == want, (got, want)
for f in want:
    assert same_bytes(os.path.join(snap, f), os.path.join(tiny, f)), f
meta = huggingface_hub.get_safetensors_metadata("lab/tiny")
assert meta.parameter_count and sum(meta.parameter_count.values()) == 352, meta.parameter_count
print("ok: allowed model downloads with identical bytes; safetensors metadata via Range")

# 2. An admitted model above the thresholds without references: GatedRepoError with the reason.
refused(lambda: hf_hub_download("lab/frontier", "config.json", cache_dir=fresh_cache()),
        "regime.reference_missing", "no notification reference")
refused(lambda: snapshot_download("lab/frontier", cache_dir=fresh_cache()), "regime.reference_missing")
# Probing an optional file a refused revision does not contain (as transformers and peft do)
# reads as the refusal, not as "not found".
for absent in ["adapter_config.json", "generation_config.json", "sub/dir/x.bin"]:
    refused(lambda: hf_hub_download("lab/frontier", absent, cache_dir=fresh_cache()), "regime.reference_missing")
print("ok: above-threshold model without references raises GatedRepoError with the reason")

# 3. A licensed model: allowed where the licence covers the destination, refused elsewhere.
p = hf_hub_download("lab/licensed", "config.json", cache_dir=fresh_cache(), headers={"CF-IPCountry": "DE"})
assert same_bytes(p, os.path.join(checkpoints, "licensed", "config.json"))
refused(lambda: hf_hub_download("lab/licensed", "config.json", cache_dir=fresh_cache(), headers={"CF-IPCountry": "BR"}),
        "regime.destination_not_covered")
refused(lambda: hf_hub_download("lab/licensed", "config.json", cache_dir=fresh_cache(), headers={"CF-IPCountry": "CN"}),
        "regime.destination_embargoed")
# Not a country (Cloudflare's unknown and Tor values, regions, alpha-3, user-assigned, spaces,
# empty): an unknown destination, refused with its own code, never taken for a non-EU country.
for value in ["XX", "T1", "EU", "DEU", "ZZ", "D E", ""]:
    refused(lambda: hf_hub_download("lab/licensed", "config.json", cache_dir=fresh_cache(),
                                    headers={"CF-IPCountry": value}),
            "regime.destination_unknown")
p = hf_hub_download("lab/licensed", "config.json", cache_dir=fresh_cache(), headers={"CF-IPCountry": "de"})
assert same_bytes(p, os.path.join(checkpoints, "licensed", "config.json"))
print("ok: licensed model allowed for DE, refused for BR and CN and for unknown destinations")

# 4. The Hub calls a mirror needs, with the real client, and provenance checked where it landed.
from huggingface_hub import HfApi  # noqa: E402
api = HfApi(endpoint=endpoint)
refs = api.list_repo_refs("lab/tiny")
assert [b.name for b in refs.branches] == ["main"] and len(refs.branches[0].target_commit) == 40, refs
commit = refs.branches[0].target_commit
commits = api.list_repo_commits("lab/tiny", revision="main")
assert [c.commit_id for c in commits] == [commit], commits
infos = api.get_paths_info("lab/tiny", ["config.json", "weightgate.att", "missing.bin"], revision="main")
assert sorted(i.path for i in infos) == ["config.json", "weightgate.att"], infos
assert all(i.lfs and len(i.lfs.sha256) == 64 for i in infos), infos
short = api.model_info("lab/tiny", revision=commit[:7])
assert short.sha == commit, (short.sha, commit)
assert api.model_info("lab/tiny").gated is False
assert api.model_info("lab/frontier").gated == "manual"
assert "weightgate.att" in [s.rfilename for s in api.model_info("lab/tiny").siblings]
snap = snapshot_download("lab/tiny", revision=commit[:7], cache_dir=fresh_cache())
verify = [os.environ["WEIGHTGATE_BIN"], "verify", snap, "--trust", os.environ["WEIGHTGATE_TRUST"],
          "--allow-symlinks", "--quiet"]
r = subprocess.run(verify, capture_output=True, text=True)
assert r.returncode == 0, (r.stdout, r.stderr)
blob = os.path.realpath(os.path.join(snap, "config.json"))
os.chmod(blob, 0o644)
with open(blob, "r+b") as f:
    b = f.read(1)
    f.seek(0)
    f.write(bytes([b[0] ^ 1]))
r = subprocess.run(verify + ["--json"], capture_output=True, text=True)
assert r.returncode == 1 and "subject.digest_mismatch" in r.stdout, (r.returncode, r.stdout, r.stderr)
print("ok: refs, commits, paths-info, short commit ids, truthful gated; a downloaded snapshot verifies, and not once altered")

# 5. HTTP details with curl: ranges, traversal, unknown revisions and entries.
def curl(path, *args):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-D", "-", *args, endpoint + path],
                         capture_output=True, text=True, check=True).stdout
    status = int(out.split()[1])
    headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in out.splitlines()[1:] if ":" in l}
    return status, headers

base = "/lab/tiny/resolve/main/model-00001-of-00002.safetensors"
size = os.path.getsize(os.path.join(tiny, "model-00001-of-00002.safetensors"))
s, h = curl(base, "-H", "Range: bytes=0-99")
assert s == 206 and h["content-range"] == f"bytes 0-99/{size}" and h["content-length"] == "100", (s, h)
s, h = curl(base, "-H", f"Range: bytes={size - 10}-")
assert s == 206 and h["content-length"] == "10", (s, h)
s, h = curl(base, "-H", f"Range: bytes={size}-{size + 10}")
assert s == 416, ("out of range", s)
s, h = curl(base, "-H", "Range: bytes=50-10")
assert s == 416, ("reversed", s)
s, h = curl(base, "-H", "Range: bytes=0-1,5-6")
assert s == 416, ("multiple ranges", s)
s, h = curl(base, "-H", "Range: pages=1-2")
assert s == 200 and h["content-length"] == str(size), ("unknown unit is ignored", s)
s, h = curl(base, "-I")
assert s == 200 and h["x-linked-size"] == str(size) and len(h["x-repo-commit"]) == 40, h
for bad in ["/lab/tiny/resolve/main/..%2f..%2fetc%2fpasswd", "/lab/tiny/resolve/main/%2e%2e/config.json",
            "/lab/tiny/resolve/main/a%5c..%5cconfig.json", "/lab/tiny/resolve/main/" + "a/" * 600 + "x"]:
    s, h = curl(bad, "--path-as-is")
    assert s == 400, (bad[:60], s)
s, h = curl("/lab/tiny/resolve/nope/config.json")
assert s == 404 and h["x-error-code"] == "RevisionNotFound", h
s, h = curl("/lab/tiny/resolve/main/missing.bin")
assert s == 404 and h["x-error-code"] == "EntryNotFound", h
s, h = curl("/nobody/nothing/resolve/main/config.json")
assert s == 404 and h["x-error-code"] == "RepoNotFound", h
s, h = curl("/lab/tiny/resolve/main/" + "x" * 9000)
assert s in (400, 414, 431), s
# Non-ASCII destination bytes (httpx only sends ASCII header values, so through curl).
s, h = curl("/lab/licensed/resolve/main/config.json", "-H", "CF-IPCountry: D\xc3\x89")
assert s == 451 and "regime.destination_unknown" in h["x-error-message"], (s, h)
print("ok: Range, traversal, unknown revision/entry/repo answered as HTTP and the Hub do")

# 6. Revocation takes effect on the next request after SIGHUP, without a restart.
shutil.copy(revoked_policy, policy)
os.kill(int(pid), signal.SIGHUP)
deadline = time.time() + 10
while True:
    try:
        refused(lambda: hf_hub_download("lab/tiny", "config.json", cache_dir=fresh_cache()), "attestation.revoked")
        break
    except AssertionError:
        if time.time() > deadline:
            raise
        time.sleep(0.1)
print("ok: revocation via SIGHUP refuses the next download")

# 7. A stored blob altered behind the server's back is refused, not served.
blobs = os.path.join(store, "blobs")
victim = os.path.join(checkpoints, "licensed", "config.json")
import hashlib
digest = hashlib.sha256(open(victim, "rb").read()).hexdigest()
os.chmod(os.path.join(blobs, digest), 0o644)
with open(os.path.join(blobs, digest), "ab") as f:
    f.write(b"tampered")
s, h = curl("/lab/licensed/resolve/main/config.json", "-H", "CF-IPCountry: DE")
assert s == 451 and h["x-error-code"] == "GatedRepo", (s, h)
print("ok: altered blob refused")
