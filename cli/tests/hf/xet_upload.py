"""The unchanged huggingface_hub + hf_xet against the gate's Xet CAS (cli/tests/xet_upload.rs).

argv: gate URL, the checkpoint folder, the store folder. Env: HF_TOKEN_A / HF_TOKEN_B (write
tokens for lab-a and lab-b), HF_HOME (the client's cache, so its shard cache persists).
Prints `ok: ...` per check; any failure raises.
"""
import hashlib
import os
import pathlib
import subprocess
import sys

import requests
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

url, checkpoint, store = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
token_a, token_b = os.environ["HF_TOKEN_A"], os.environ["HF_TOKEN_B"]
hf = pathlib.Path(sys.executable).parent / "hf"
files = sorted(p.name for p in checkpoint.iterdir())


def downloaded_identical(api_token, repo, revision):
    for name in files:
        got = hf_hub_download(repo, name, revision=revision, endpoint=url, token=api_token,
                              cache_dir=os.environ["HF_HOME"] + "/downloads")
        assert pathlib.Path(got).read_bytes() == (checkpoint / name).read_bytes(), name


# 1. `hf upload` (Xet is the default path) of the sharded checkpoint: admitted, and every file
#    downloads byte-identical through the gate.
api_a = HfApi(endpoint=url, token=token_a)
api_a.create_repo("lab-a/tiny")
env = dict(os.environ, HF_ENDPOINT=url, HF_TOKEN=token_a)
run = subprocess.run([str(hf), "upload", "lab-a/tiny", str(checkpoint), "."],
                     env=env, capture_output=True, text=True)
assert run.returncode == 0, run.stdout + run.stderr
head = api_a.list_repo_refs("lab-a/tiny").branches[0].target_commit
downloaded_identical(token_a, "lab-a/tiny", head)
# Reads stay plain HTTP: no Xet header or `xetHash` anywhere a client reads.
for r in [requests.get(f"{url}/lab-a/tiny/resolve/{head}/{name}") for name in files] + [
    requests.head(f"{url}/lab-a/tiny/resolve/{head}/{files[0]}"),
    requests.get(f"{url}/api/models/lab-a/tiny/tree/{head}"),
    requests.get(f"{url}/api/models/lab-a/tiny/revision/{head}"),
    requests.post(f"{url}/api/models/lab-a/tiny/paths-info/{head}", data={"paths": files}),
]:
    assert r.status_code == 200, (r.url, r.status_code)
    assert not [k for k in r.headers if k.lower().startswith("x-xet")], (r.url, r.headers)
    assert b"xetHash" not in r.content and b"xet_hash" not in r.content, r.url
print("ok: hf upload through Xet admitted, downloads byte-identical, reads carry nothing of Xet")

# 2. HfApi.upload_folder of the same shards to another repository of the namespace: the client
#    finds every chunk in its own shard cache and sends no xorb (the Rust side counts them).
api_a.create_repo("lab-a/tiny-again")
info = api_a.upload_folder(folder_path=str(checkpoint), repo_id="lab-a/tiny-again")
downloaded_identical(token_a, "lab-a/tiny-again", info.oid)
print("ok: upload_folder of the same shards admitted", info.oid)
print("second upload done", flush=True)


def cas_token(token, repo):
    r = requests.get(f"{url}/api/models/{repo}/xet-write-token/main",
                     headers={"authorization": f"Bearer {token}"})
    r.raise_for_status()
    j = r.json()
    assert r.headers["X-Xet-Cas-Url"] == j["casUrl"] == url + "/xet-cas", j
    return j["casUrl"], {"authorization": "Bearer " + j["accessToken"]}


# 3. A tampered xorb: 400 naming the xorb and what is wrong (here the flipped byte breaks its
#    last chunk's LZ4 frame; a xorb that decodes to other chunks is refused by its hash).
cas, auth_a = cas_token(token_a, "lab-a/tiny")
xorb_path = next((store / "xet/lab-a/xorbs").iterdir())
xorb = bytearray(xorb_path.read_bytes())
xorb[-1] ^= 1
r = requests.post(f"{cas}/v1/xorbs/default/{xorb_path.name}", data=bytes(xorb), headers=auth_a)
assert r.status_code == 400 and r.json()["error"].startswith(f"xorb {xorb_path.name}: chunk "), r.text
print("ok: tampered xorb refused:", r.json()["error"])

# 4. A bad shard: one naming a xorb the namespace never uploaded, and one that is not a shard.
shard_path = next((store / "xet/lab-a/shards").iterdir())
shard = bytearray(shard_path.read_bytes())
shard[48 + 48] ^= 1  # the first term's xorb hash
r = requests.post(f"{cas}/v1/shards", data=bytes(shard), headers=auth_a)
assert r.status_code == 400 and "which was never uploaded" in r.json()["error"], r.text
print("ok: shard naming a missing xorb refused:", r.json()["error"])
r = requests.post(f"{cas}/v1/shards", data=b"\0" * 100, headers=auth_a)
assert r.status_code == 400 and "header tag" in r.json()["error"], r.text

# 4b. The v2 shard route is absent: the client hears the 404 only after its whole body (a
#     shard of megabytes) went out, not a broken pipe mid-body (hf_xet would retry after a
#     back-off before falling back to v1).
import http.client, urllib.parse
u = urllib.parse.urlsplit(cas)
conn = http.client.HTTPConnection(u.hostname, u.port)
conn.request("POST", u.path + "/v2/shards", body=b"\0" * (3 << 20), headers=auth_a)
assert conn.getresponse().status == 404
print("ok: the v2 shard route answers 404 after the body")

# 5. Lab B probes for lab A's bytes: the dedupe query, HEAD of the xorb, and lab A's own shard
#    replayed all answer as if nothing existed.
_, auth_b = cas_token(token_b, "lab-b/probe")
assert requests.get(f"{cas}/v1/chunks/default/{xorb_path.name}", headers=auth_b).status_code == 404
assert requests.get(f"{cas}/v1/chunks/default/{xorb_path.name}", headers=auth_a).status_code == 404
assert requests.head(f"{cas}/v1/xorbs/default/{xorb_path.name}", headers=auth_b).status_code == 404
assert requests.head(f"{cas}/v1/xorbs/default/{xorb_path.name}", headers=auth_a).status_code == 200
r = requests.post(f"{cas}/v1/shards", data=shard_path.read_bytes(), headers=auth_b)
assert r.status_code == 400 and "which was never uploaded" in r.json()["error"], r.text
print("ok: lab-b learns nothing of lab-a's xorbs")

# 6. Tokens: none, a foreign one, and lab A's Hub token for lab B's repository.
assert requests.post(f"{cas}/v1/shards", data=b"").status_code == 401
r = requests.get(f"{url}/api/models/lab-b/x/xet-write-token/main",
                 headers={"authorization": f"Bearer {token_a}"})
assert r.status_code == 403, r.text
try:
    HfApi(endpoint=url, token=token_a).upload_file(
        path_or_fileobj=str(checkpoint / files[0]), path_in_repo=files[0], repo_id="lab-b/x")
    raise AssertionError("lab-a's token uploaded into lab-b")
except HfHubHTTPError as e:
    assert e.response.status_code in (403, 404), e
print("ok: tokens scoped")
