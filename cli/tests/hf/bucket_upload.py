"""Uploads with the unchanged huggingface_hub 2.4 + hf_xet to two gates over one bucket
(cli/tests/gate_bucket_upload.rs).

argv: gate A URL, gate B URL, the attested checkpoint, a folder of envelopes for the same files
(race-N.att), a work folder, gate A's and gate B's audit logs. Env: HF_TOKEN_LAB (a write token
for `lab`). Prints `PASS ...` per check; any failure raises.
"""
import base64
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import requests

url_a, url_b = sys.argv[1], sys.argv[2]
good, envelopes, work = (pathlib.Path(p) for p in sys.argv[3:6])
audits = [pathlib.Path(p) for p in sys.argv[6:8]]
token = os.environ["HF_TOKEN_LAB"]
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HOME"] = str(work / "hf-home")
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HF_HUB_DISABLE_XET", None)

from huggingface_hub import HfApi, snapshot_download  # noqa: E402

HF = str(pathlib.Path(sys.executable).with_name("hf"))
AUTH = {"Authorization": f"Bearer {token}"}


def ok(name):
    print(f"PASS {name}", flush=True)


def hf_upload(endpoint, repo, xet):
    env = dict(os.environ, HF_TOKEN=token, HF_ENDPOINT=endpoint)
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    r = subprocess.run([HF, "upload", repo, str(good), "."], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"/{repo}/commit/" in r.stdout, r.stdout


def same_tree(endpoint, repo, into):
    got = pathlib.Path(snapshot_download(repo, local_dir=work / into, endpoint=endpoint, token=token))
    files = lambda d: sorted(p.relative_to(d) for p in d.rglob("*") if p.is_file() and ".cache" not in p.parts)
    assert files(good) == files(got), (files(good), files(got))
    for rel in files(good):
        assert (good / rel).read_bytes() == (got / rel).read_bytes(), rel


def lfs_puts():
    """LFS objects received by either gate (one `lfs:OID` audit record per PUT)."""
    out = []
    for log in audits:
        lines = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
        out += [l for l in lines if l["path"].startswith("lfs:") and l["status"] == 200]
    return out


def head(endpoint, repo):
    r = requests.get(f"{endpoint}/api/models/{repo}/revision/main")
    return r.json()["sha"] if r.status_code == 200 else None


def settled_heads(repo, expected):
    """The heads both gates answer, once both answer `expected` (each caches what it resolved
    for the current second) or after 5 s."""
    deadline = time.monotonic() + 5
    while True:
        heads = head(url_a, repo), head(url_b, repo)
        if heads == (expected, expected) or time.monotonic() > deadline:
            return heads
        time.sleep(0.1)


# 1. LFS (HF_HUB_DISABLE_XET=1) through gate A, downloaded byte-identical through gate B.
hf_upload(url_a, "lab/tiny", xet=False)
same_tree(url_b, "lab/tiny", "dl-lfs")
first = len(lfs_puts())
assert first == 2, lfs_puts()
ok("hf upload over LFS to gate A admitted; gate B serves it byte-identical")

# 2. The same shards again through gate B: the batch answers them as held, no large bytes.
api_b = HfApi(endpoint=url_b, token=token)
api_b.create_repo("lab/tiny-copy", exist_ok=True)
os.environ["HF_HUB_DISABLE_XET"] = "1"
info = api_b.upload_folder(repo_id="lab/tiny-copy", folder_path=str(good))
os.environ.pop("HF_HUB_DISABLE_XET")
assert len(info.oid) == 40 and len(lfs_puts()) == first, lfs_puts()
same_tree(url_a, "lab/tiny-copy", "dl-copy")
ok("upload_folder of the same shards through gate B sent no large bytes")

# 3. Xet (the default) through gate B, downloaded byte-identical through gate A.
hf_upload(url_b, "lab/tiny-xet", xet=True)
same_tree(url_a, "lab/tiny-xet", "dl-xet")
ok("hf upload through Xet to gate B admitted; gate A serves it byte-identical")

# 4. A Xet access token issued by gate A is accepted by gate B (kept in the bucket, hashed).
r = requests.get(f"{url_a}/api/models/lab/tiny-xet/xet-write-token/main", headers=AUTH)
assert r.status_code == 200, r.text
xet = {"Authorization": "Bearer " + r.json()["accessToken"]}
probe = f"{url_b}/xet-cas/v1/xorbs/default/{'0' * 64}"
assert requests.head(probe, headers=xet).status_code == 404
assert requests.head(probe, headers={"Authorization": "Bearer xet_" + "0" * 64}).status_code == 401
ok("a Xet token from gate A is accepted by gate B; an unknown one is refused")

# 5. Gates A and B race commits on one branch, each naming the head it read as parentCommit:
#    each round exactly one wins, the other gets the Hub's 412, and the branch is the winner's.
def commit(endpoint, envelope, parent, out, i):
    lines = [{"key": "header", "value": {"summary": "race", **({"parentCommit": parent} if parent else {})}},
             {"key": "file", "value": {"path": "weightgate.att", "encoding": "base64",
                                       "content": base64.b64encode(envelope.read_bytes()).decode()}}]
    body = "".join(json.dumps(l) + "\n" for l in lines)
    barrier.wait()
    out[i] = requests.post(f"{endpoint}/api/models/lab/tiny/commit/main", data=body,
                           headers={**AUTH, "Content-Type": "application/x-ndjson"})


race = sorted(envelopes.glob("race-*.att"))
store_conflicts = 0
parent = head(url_a, "lab/tiny")
for rnd in range(len(race) // 2 - 1):
    barrier = threading.Barrier(2)
    out = [None, None]
    ts = [threading.Thread(target=commit, args=(u, race[2 * rnd + i], parent, out, i)) for i, u in enumerate([url_a, url_b])]
    [t.start() for t in ts]
    [t.join() for t in ts]
    codes = sorted(r.status_code for r in out)
    assert codes == [200, 412], [(r.status_code, r.text) for r in out]
    winner = next(r for r in out if r.status_code == 200).json()["commitOid"]
    loser = next(r for r in out if r.status_code == 412)
    assert "A commit has happened since" in loser.headers.get("x-error-message", ""), loser.headers
    store_conflicts += "another commit won" in loser.headers["x-error-message"]
    heads = settled_heads("lab/tiny", winner)
    assert heads == (winner, winner), (heads, winner, [(r.status_code, r.text) for r in out])
    parent = winner
print(f"store-level conflicts: {store_conflicts}", flush=True)
# At least one loser passed its gate's own check and lost at the bucket's conditional write.
assert store_conflicts >= 1, store_conflicts
ok("racing commits with parentCommit: one wins per round, the other gets 412, no lost update")

# 6. Without parentCommit, both apply: the one that lost the branch is judged again on the new
#    head, and the branch ends at the second.
barrier = threading.Barrier(2)
out = [None, None]
ts = [threading.Thread(target=commit, args=(u, race[-2 + i], None, out, i)) for i, u in enumerate([url_a, url_b])]
[t.start() for t in ts]
[t.join() for t in ts]
assert [r.status_code for r in out] == [200, 200], [(r.status_code, r.text) for r in out]
oids = {r.json()["commitOid"] for r in out}
assert len(oids) == 2 and parent not in oids, (oids, parent)
# The branch ends at one of them, on both gates.
deadline = time.monotonic() + 5
while (heads := (head(url_a, "lab/tiny"), head(url_b, "lab/tiny")))[0] not in oids or heads[0] != heads[1]:
    assert time.monotonic() < deadline, (heads, oids)
    time.sleep(0.1)
for oid in oids:
    assert requests.get(f"{url_b}/api/models/lab/tiny/revision/{oid}").status_code == 200
ok("racing commits without parentCommit: both applied in turn")
