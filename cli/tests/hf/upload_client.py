"""Uploads through the gate with the unchanged huggingface_hub client (LFS path), then the
red-team questions over raw HTTP. Run by cli/tests/gate_upload.rs; prints `PASS name` per
check and raises on the first failure.

argv: endpoint store good tampered unattested other_lab lab_token other_token work
"""

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import urllib.error
import urllib.request

endpoint, store, good, tampered, unattested, other_lab, lab_token, other_token, work = sys.argv[1:]
store = pathlib.Path(store)
work = pathlib.Path(work)
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_ENDPOINT"] = endpoint
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HOME"] = str(work / "hf-home")
os.environ.pop("HF_TOKEN", None)

from huggingface_hub import HfApi, snapshot_download  # noqa: E402
from huggingface_hub.errors import HfHubHTTPError  # noqa: E402

HF = str(pathlib.Path(sys.executable).with_name("hf"))


def ok(name):
    print(f"PASS {name}", flush=True)


def hf_upload(repo, folder, token):
    env = dict(os.environ, HF_TOKEN=token)
    return subprocess.run([HF, "upload", repo, folder, "."], env=env, capture_output=True, text=True)


def same_tree(a, b):
    files = lambda d: sorted(p.relative_to(d) for p in pathlib.Path(d).rglob("*") if p.is_file() and ".cache" not in p.parts)
    assert files(a) == files(b), (files(a), files(b))
    for rel in files(a):
        assert (pathlib.Path(a) / rel).read_bytes() == (pathlib.Path(b) / rel).read_bytes(), rel


def lfs_puts():
    """LFS objects received so far, from the audit log (one `lfs:OID` record per PUT)."""
    log = store / "audit.log"
    lines = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
    return [l for l in lines if l["path"].startswith("lfs:") and l["status"] == 200]


def nothing_pending():
    up = store / "uploads"
    left = [p for p in up.rglob("*") if p.is_file()] if up.exists() else []
    assert left == [], left
    assert list((store / "tmp").iterdir()) == []


def request(method, path, body=None, token=None, headers=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(endpoint + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


# 1. `hf upload` of a sharded checkpoint: admitted, then downloaded byte-identical.
r = hf_upload("lab/tiny", good, lab_token)
assert r.returncode == 0, r.stderr + r.stdout
assert "/lab/tiny/commit/" in r.stdout, r.stdout
got = snapshot_download("lab/tiny", local_dir=work / "dl1")
same_tree(good, got)
first_puts = len(lfs_puts())
assert first_puts == 2, lfs_puts()
nothing_pending()
ok("hf upload admitted and downloaded byte-identical")

# 2. HfApi.upload_folder of the same shards to another repository of the namespace: admitted,
# and no large bytes sent again (the batch answers the shards as present).
api = HfApi(token=lab_token)
api.create_repo("lab/tiny-copy", exist_ok=True)
info = api.upload_folder(repo_id="lab/tiny-copy", folder_path=good)
assert len(info.oid) == 40, info
assert len(lfs_puts()) == first_puts, lfs_puts()
same_tree(good, snapshot_download("lab/tiny-copy", local_dir=work / "dl2"))
ok("upload_folder admitted; the same shards were not sent again")

# 3. Refusals carry the reason codes to the client; nothing becomes visible.
refs_before = sorted((store / "repos").rglob("refs/*"))
for folder, repo, token, want in [
    (unattested, "lab/bare", lab_token, "no weightgate.att"),
    (tampered, "lab/tiny", lab_token, "subject.digest_mismatch"),
    (other_lab, "lab/impostor", lab_token, "signature.wrong_namespace"),
]:
    r = hf_upload(repo, folder, token)
    assert r.returncode != 0, (repo, r.stdout)
    assert want in r.stderr and "403 Forbidden" in r.stderr, (want, r.stderr)
    nothing_pending()
    ok(f"refused with {want}")
try:
    api.upload_folder(repo_id="lab/tiny", folder_path=tampered)
    raise AssertionError("tampered upload_folder admitted")
except HfHubHTTPError as e:
    assert e.response.status_code == 403 and "subject.digest_mismatch" in str(e), str(e)
assert sorted((store / "repos").rglob("refs/*")) == refs_before
ok("HfHubHTTPError carries the reason code; no ref moved")

# 4. Tokens and namespaces.
r = hf_upload("other/tiny", good, lab_token)
assert r.returncode != 0 and "may not write other/tiny" in r.stderr, r.stderr
status, body, _ = request("POST", "/api/models/other/x/commit/main", b'{"key":"header","value":{}}\n', token=lab_token)
assert status == 403 and b"may not write" in body, (status, body)
status, _, _ = request("GET", "/api/whoami-v2")
assert status == 401
status, body, _ = request("GET", "/api/whoami-v2", token=lab_token)
assert status == 200 and json.loads(body)["name"] == "lab-ci", body
assert HfApi(token=lab_token).whoami()["name"] == "lab-ci"
ok("tokens: 401 without, 403 outside the namespace, whoami names the token")

# 5. Stale parentCommit: the Hub's conflict answer (412); the branch did not move.
head = api.model_info("lab/tiny").sha
from huggingface_hub import CommitOperationAdd  # noqa: E402

try:
    api.create_commit(
        "lab/tiny",
        operations=[CommitOperationAdd("weightgate.att", str(pathlib.Path(good) / "weightgate.att"))],
        commit_message="stale",
        parent_commit="0" * 40,
    )
    raise AssertionError("stale parent admitted")
except HfHubHTTPError as e:
    assert e.response.status_code == 412, e
assert api.model_info("lab/tiny").sha == head
ok("stale parentCommit answered 412")

# 6. Bad input over raw HTTP: each a clear 4xx naming what is wrong.
commit = "/api/models/lab/tiny/commit/main"
hdr = '{"key":"header","value":{"summary":"x"}}\n'
for body, want in [
    (b"not json\n", b"line 1"),
    ((hdr + '{"key":"file","value":{"path":"../../etc/passwd","content":"aGk=","encoding":"base64"}}\n').encode(), b"../../etc/passwd"),
    ((hdr + '{"key":"lfsFile","value":{"path":"m.safetensors","algo":"sha256","oid":"' + "ab" * 32 + '","size":5}}\n').encode(), b"never arrived"),
]:
    status, got, _ = request("POST", commit, body, token=lab_token)
    assert status == 400 and want in got, (status, got)
data = b"x" * 1000
oid = hashlib.sha256(data).hexdigest()
batch = lambda token, objs, repo="lab/tiny": request(
    "POST", f"/{repo}.git/info/lfs/objects/batch", {"operation": "upload", "transfers": ["basic"], "objects": objs}, token=token
)
status, got, _ = batch(lab_token, [{"oid": oid, "size": 1000}])
href = json.loads(got)["objects"][0]["actions"]["upload"]["href"]
path = href[len(endpoint):]
status, got, _ = request("PUT", path, b"y" * 1000)
assert status == 400 and b"SHA-256" in got, (status, got)
status, got, _ = request("PUT", path, data + b"z")
assert status == 400 and b"Content-Length" in got, (status, got)
status, got, _ = request("PUT", path, data)
assert status == 200, (status, got)
status, got, _ = request("PUT", path, data)
assert status == 403 and b"unknown or expired" in got, (status, got)
ok("bad input: malformed NDJSON, escaping path, missing bytes, lying size or digest, reused URL")

# 7. Red team: no cross-tenant oracle, no overwrite or shadowing of another tenant's bytes.
shard = next(pathlib.Path(good).glob("*.safetensors"))
shard_oid = hashlib.sha256(shard.read_bytes()).hexdigest()
size = shard.stat().st_size
status, got, _ = batch(other_token, [{"oid": shard_oid, "size": size}], "other/steal")
obj = json.loads(got)["objects"][0]
assert "upload" in obj.get("actions", {}), obj  # lab holds it; other is not told so
status, got, _ = request("PUT", obj["actions"]["upload"]["href"][len(endpoint):], b"\0" * size)
assert status == 400, (status, got)
blob = store / "blobs" / shard_oid
assert blob.read_bytes() == shard.read_bytes()
hdr_other = '{"key":"header","value":{"summary":"x"}}\n'
lfs = '{"key":"lfsFile","value":{"path":"w.safetensors","algo":"sha256","oid":"%s","size":%d}}\n' % (shard_oid, size)
status, got, _ = request("POST", "/api/models/other/steal/commit/main", (hdr_other + lfs).encode(), token=other_token)
assert status == 400 and b"never arrived" in got, (status, got)
ok("red team: no oracle of another tenant's bytes, no overwrite, no publishing them by digest")

# 8. A slow uploader holds nothing past the idle timeout (the gate runs with 1 s).
import socket  # noqa: E402
import time  # noqa: E402

status, got, _ = batch(lab_token, [{"oid": "cd" * 32, "size": 1000}])
href = json.loads(got)["objects"][0]["actions"]["upload"]["href"]
host, port = endpoint.removeprefix("http://").split(":")
s = socket.create_connection((host, int(port)))
s.sendall(f"PUT {href[len(endpoint):]} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n".encode() + b"x" * 10)
time.sleep(0.3)
assert list((store / "uploads" / "lab").glob(".recv-*")), "no receipt while receiving"
s.settimeout(10)
answer = s.recv(4096)
assert answer.startswith(b"HTTP/1.1 408"), answer
s.close()
assert not list((store / "uploads" / "lab").glob(".recv-*"))
assert not (store / "uploads" / "lab" / ("cd" * 32)).exists()
ok("a stalled upload is cut off and leaves nothing")

# 9. Repeated failed authentications are rate-limited.
codes = [request("GET", "/api/whoami-v2", token="wg_" + "0" * 64)[0] for _ in range(21)]
assert codes[0] == 401 and codes[-1] == 429, codes
ok("failed authentications rate-limited")
