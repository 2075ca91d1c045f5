#!/usr/bin/env bash
# Uploads into the gate (issue 25), in one run on loopback:
#  1. LFS ingestion: the checkpoint's LFS files PUT one after another (curl -T) to the gate's
#     LFS upload URLs, against the same PUTs to Debian nginx with `dav_methods PUT` writing to
#     the same disk. Target: gate >= 0.8x nginx.
#  2. Commit latency after the last byte: the NDJSON commit that makes the revision visible
#     (judged, published). Target <= 1 s, growing with headers, not bytes.
#  3. Refusal latency (a 451 on an embargoed destination) on other connections, idle and while
#     a large upload runs. Target: p99 during the upload within 2x of idle.
#  4. Xet vs LFS: not measured here until the Xet CAS lands (its own branch).
# Not a test: timings vary by host. Default data: the 4 GiB 3-shard checkpoint of
# bench/gen_checkpoint.py; `--checkpoint DIR` uses another (e.g. testdata/checkpoints/tiny for
# a smoke run).
# Usage: bench/upload.sh [--checkpoint DIR]
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
DATA="${WEIGHTGATE_BENCH_DATA:-/work/benchdata}/upload"
WG="${WEIGHTGATE:-$REPO/target/release/weightgate}"
if [[ -z "${WEIGHTGATE:-}" ]]; then (cd "$REPO" && cargo build --release -q -p weightgate); fi
TD="$REPO/testdata"
CKPT=""
if [[ "${1:-}" == "--checkpoint" ]]; then CKPT="$2"; fi
if [[ -z "$CKPT" ]]; then
  python3 "$BENCH_DIR/gen_checkpoint.py" "${WEIGHTGATE_BENCH_DATA:-/work/benchdata}"
  CKPT="${WEIGHTGATE_BENCH_DATA:-/work/benchdata}/sharded"
fi
GATE_PORT=18291
NGINX_PORT=18292

rm -rf "$DATA" && mkdir -p "$DATA/nginx-root" "$DATA/nginx-tmp"
cp -r "$CKPT" "$DATA/release"
rm -f "$DATA/release/weightgate.att"
cp -r "$TD/checkpoints/tiny" "$DATA/embargoed"
cat > "$DATA/policy.toml" <<POLICY
[policy]
name = "upload bench"
regimes = ["us-bis-ai-diffusion-2025"]
destination_header = "CF-IPCountry"
[[trusted_key]]
name = "lab"
path = "$TD/keys/test-lab.pub"
[regime."us-bis-ai-diffusion-2025"]
assume_in_force = true
POLICY
"$WG" attest "$DATA/release" --key "$TD/keys/test-lab.key" --claims "$TD/claims/tiny-below.toml" --quiet
"$WG" attest "$DATA/embargoed" --key "$TD/keys/test-lab.key" --claims "$TD/claims/tiny-above.toml" --quiet
"$WG" admit "$DATA/embargoed" --repo lab/embargoed --store "$DATA/store" --policy "$DATA/policy.toml" >/dev/null
TOKEN=$("$WG" token create --store "$DATA/store" --name bench --write bench)

# Workers write as the user running the bench (as root, nginx would drop to nobody).
NGINX_USER=""
if [[ $(id -u) == 0 ]]; then NGINX_USER="user root root;"; fi
cat > "$DATA/nginx.conf" <<NGINX
$NGINX_USER
daemon off;
worker_processes 1;
pid $DATA/nginx.pid;
error_log $DATA/nginx-error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $DATA/nginx-tmp;
  proxy_temp_path $DATA/nginx-tmp;
  fastcgi_temp_path $DATA/nginx-tmp;
  uwsgi_temp_path $DATA/nginx-tmp;
  scgi_temp_path $DATA/nginx-tmp;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $DATA/nginx-root;
    client_max_body_size 0;
    location / { dav_methods PUT; create_full_put_path on; }
  }
}
NGINX
/usr/sbin/nginx -c "$DATA/nginx.conf" &
NGINX_PID=$!
"$WG" serve --store "$DATA/store" --policy "$DATA/policy.toml" --listen "127.0.0.1:$GATE_PORT" 2>"$DATA/serve.log" &
GATE_PID=$!
trap 'kill $GATE_PID $NGINX_PID 2>/dev/null || true' EXIT
sleep 1
echo "machine: $(nproc) cores; weightgate: $("$WG" --version); $(/usr/sbin/nginx -v 2>&1)"

python3 - "$DATA" "$GATE_PORT" "$NGINX_PORT" "$TOKEN" <<'PY'
import base64, hashlib, json, os, pathlib, statistics, subprocess, sys, threading, time, urllib.request

data, gate_port, nginx_port, token = sys.argv[1:]
data = pathlib.Path(data)
gate = f"http://127.0.0.1:{gate_port}"
nginx = f"http://127.0.0.1:{nginx_port}"
release = data / "release"
files = sorted(p for p in release.rglob("*") if p.is_file())
lfs = [p for p in files if p.name.endswith(".safetensors")]
total = sum(p.stat().st_size for p in lfs)
auth = {"Authorization": f"Bearer {token}"}

def post(url, body, headers):
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")

def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(16 << 20):
            h.update(chunk)
    return h.hexdigest()

def put_all(urls):
    t = time.monotonic()
    for p, url in urls:
        subprocess.run(["curl", "-sf", "-o", "/dev/null", "-T", str(p), url], check=True)
    return time.monotonic() - t

def refusal_times(n):
    out = []
    for _ in range(n):
        req = urllib.request.Request(f"{gate}/lab/embargoed/resolve/main/config.json", headers={"CF-IPCountry": "CN"})
        t = time.monotonic()
        try:
            urllib.request.urlopen(req).read()
            raise SystemExit("the embargoed release was served")
        except urllib.error.HTTPError as e:
            assert e.code == 451, e.code
            e.read()
        out.append(time.monotonic() - t)
    return out

def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]

oids = {p: sha(p) for p in files}
print(f"== {len(lfs)} LFS files, {total / 1e9:.3f} GB")
t_nginx = put_all([(p, f"{nginx}/{p.name}") for p in lfs])
for p in lfs:
    assert (data / "nginx-root" / p.name).stat().st_size == p.stat().st_size
print(f"nginx dav PUT:     {t_nginx:.3f} s  {total / t_nginx / 1e6:.0f} MB/s")

def gate_upload_urls():
    batch = post(f"{gate}/bench/upload.git/info/lfs/objects/batch",
                 json.dumps({"operation": "upload", "transfers": ["basic"],
                             "objects": [{"oid": oids[p], "size": p.stat().st_size} for p in lfs]}).encode(),
                 {**auth, "Content-Type": "application/json"})
    return [(p, o["actions"]["upload"]["href"]) for p, o in zip(lfs, batch["objects"])]

idle = refusal_times(200)
urls = gate_upload_urls()
busy = []
stop = threading.Event()
def probe():
    while not stop.is_set():
        busy.extend(refusal_times(10))
th = threading.Thread(target=probe); th.start()
t_gate = put_all(urls)
stop.set(); th.join()
print(f"gate LFS PUT:      {t_gate:.3f} s  {total / t_gate / 1e6:.0f} MB/s  ({t_nginx / t_gate:.2f}x nginx; target >= 0.8)")

lines = [json.dumps({"key": "header", "value": {"summary": "bench", "description": ""}})]
for p in files:
    rel = str(p.relative_to(release))
    if p in lfs:
        lines.append(json.dumps({"key": "lfsFile", "value": {"path": rel, "algo": "sha256", "oid": oids[p], "size": p.stat().st_size}}))
    else:
        lines.append(json.dumps({"key": "file", "value": {"path": rel, "content": base64.b64encode(p.read_bytes()).decode(), "encoding": "base64"}}))
t = time.monotonic()
done = post(f"{gate}/api/models/bench/upload/commit/main", ("\n".join(lines) + "\n").encode(), {**auth, "Content-Type": "application/x-ndjson"})
t_commit = time.monotonic() - t
print(f"commit after the last byte: {t_commit * 1000:.0f} ms (target <= 1000)  revision {done['commitOid']}")
print(f"refusal p50/p99 idle:   {statistics.median(idle) * 1000:.2f} / {p99(idle) * 1000:.2f} ms ({len(idle)} requests)")
if busy:
    ratio = p99(busy) / p99(idle)
    print(f"refusal p50/p99 upload: {statistics.median(busy) * 1000:.2f} / {p99(busy) * 1000:.2f} ms ({len(busy)} requests; p99 {ratio:.2f}x idle, target <= 2)")
else:
    print("refusal during upload: the upload ended before a probe finished (checkpoint too small)")
print("xet vs LFS: not measured (the Xet CAS is not in this build)")
PY
