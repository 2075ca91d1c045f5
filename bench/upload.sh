#!/usr/bin/env bash
# Uploads into the gate (issue 25), in one run on loopback:
#  1. LFS ingestion: the checkpoint's LFS files PUT one after another (curl -T) to the gate's
#     LFS upload URLs, against the same PUTs to Debian nginx with `dav_methods PUT` writing to
#     the same disk, each probed with refusals as in 3 (nginx answers `return 451`). Target:
#     gate >= 0.8x nginx. Beside the wall time, the CPU seconds per GB of the server (its
#     processes' utime + stime from /proc) and of curl, which do not depend on what else runs.
#  2. Commit latency after the last byte: the NDJSON commit that makes the revision visible
#     (judged, published). Target <= 1 s, growing with headers, not bytes.
#  3. Refusal latency (a 451 on an embargoed destination) on other connections, idle and while
#     a large upload runs, by bench/refusal_probe.py: an open loop at a fixed rate (100/s on 4
#     keep-alive connections), each latency from the request's scheduled send time, the same
#     for nginx and the gate, idle and loaded (docs/decisions.md). Target: p99 during the
#     upload within 2x of idle. nginx's 451 during its own PUTs is printed beside it. Dirty
#     pages are written back (sync) before each phase, so no phase pays for the one before.
#  4. Xet vs LFS, end to end with the unchanged client (huggingface_hub + hf_xet from .ci/venv):
#     `hf upload` of the checkpoint on its default Xet path against `HF_HUB_DISABLE_XET=1 hf
#     upload` (the LFS batch API), each from its start to its exit after the commit is
#     answered, into namespaces of their own (nothing either sent is there for the other), with
#     refusal latency probed during each. Target: Xet <= 1.3x LFS. Beside each wall time: the
#     CPU-seconds of the client (the `hf` process with hf_xet's threads) and of the gate (all
#     its threads, less what the refusal probes cost it, measured on an idle gate), so the
#     table says which side the cost is on.
# Not a test: timings vary by host. Default data: the 4 GiB 3-shard checkpoint of
# bench/gen_checkpoint.py; `--checkpoint DIR` uses another (e.g. testdata/checkpoints/tiny for
# a smoke run). The copy uploaded has its tensor bytes replaced by random ones: the generated
# checkpoint repeats one block in every tensor, which Xet's deduplication would not send at all.
# Disk: about 6x the checkpoint under $WEIGHTGATE_BENCH_DATA/upload.
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
python3 - "$DATA/release" <<'PY'
import os, pathlib, struct, sys
for p in sorted(pathlib.Path(sys.argv[1]).rglob("*.safetensors")):
    with open(p, "r+b") as f:
        (header,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + header)
        left = p.stat().st_size - 8 - header
        while left:
            n = min(left, 16 << 20)
            f.write(os.urandom(n))
            left -= n
PY
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
TOKEN_LFS=$("$WG" token create --store "$DATA/store" --name bench-lfs --write bench-lfs)
TOKEN_XET=$("$WG" token create --store "$DATA/store" --name bench-xet --write bench-xet)
HF="$REPO/.ci/venv/bin/hf"
[[ -x "$HF" ]] || { echo "needs the client: $HF (.ci/run installs .ci/venv)" >&2; exit 1; }

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
    # The same probe the gate gets during its upload, answered by nginx during its own.
    location = /refused { return 451; }
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

python3 - "$DATA" "$GATE_PORT" "$NGINX_PORT" "$TOKEN" "$TOKEN_LFS" "$TOKEN_XET" "$HF" "$GATE_PID" "$NGINX_PID" "$BENCH_DIR" <<'PY'
import base64, hashlib, json, os, pathlib, resource, signal, subprocess, sys, time, urllib.request

data, gate_port, nginx_port, token, token_lfs, token_xet, hf, gate_pid, nginx_pid, bench = sys.argv[1:]
gate_pid, nginx_pid = int(gate_pid), int(nginx_pid)
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

TICK = os.sysconf("SC_CLK_TCK")

def cpu_seconds(pid):
    """utime + stime of process `pid` and its children (nginx's worker), in seconds."""
    total = 0
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / TICK

def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def client_nice():
    """CLIENT_NICE (diagnostic): the uploading clients yield the CPU to the servers and the
    probe, as clients on other machines would not take it."""
    return ["nice", "-n", os.environ["CLIENT_NICE"]] if os.environ.get("CLIENT_NICE") else []

def put_all(urls, server_pid):
    """PUTs each file with curl: (wall seconds, server CPU seconds, curl CPU seconds)."""
    os.sync()
    t, server, curl = time.monotonic(), cpu_seconds(server_pid), children_cpu()
    for p, url in urls:
        subprocess.run(client_nice() + ["curl", "-sf", "-o", "/dev/null", "-T", str(p), url], check=True)
    return time.monotonic() - t, cpu_seconds(server_pid) - server, children_cpu() - curl

GATE_REFUSAL = (f"{gate}/lab/embargoed/resolve/main/config.json", {"CF-IPCountry": "CN"})
NGINX_REFUSAL = (f"{nginx}/refused", {})
PROBE_RATE, PROBE_CONNECTIONS, IDLE_SECONDS = 100, 4, 5

def probe_command(target):
    url, headers = target
    cmd = [sys.executable, f"{bench}/refusal_probe.py", url, "--status", "451",
           "--rate", str(PROBE_RATE), "--connections", str(PROBE_CONNECTIONS)]
    for k, v in headers.items():
        cmd += ["--header", f"{k}:{v}"]
    return cmd

def idle_refusals(target, server_pid):
    """The probe's summary on an idle server, with the server's CPU seconds per refusal (to
    take the probe's own cost out of the server's CPU during an upload)."""
    before = cpu_seconds(server_pid)
    run = subprocess.run(probe_command(target) + ["--seconds", str(IDLE_SECONDS)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"the probe failed:\n{run.stdout}{run.stderr}")
    out = json.loads(run.stdout)
    out["cpu_each"] = (cpu_seconds(server_pid) - before) / max(out["answered"], 1)
    return out


def gate_upload_urls():
    batch = post(f"{gate}/bench/upload.git/info/lfs/objects/batch",
                 json.dumps({"operation": "upload", "transfers": ["basic"],
                             "objects": [{"oid": oids[p], "size": p.stat().st_size} for p in lfs]}).encode(),
                 {**auth, "Content-Type": "application/json"})
    return [(p, o["actions"]["upload"]["href"]) for p, o in zip(lfs, batch["objects"])]

def probed(work, target=GATE_REFUSAL):
    """Runs work() while the probe sends refusals on other connections: (its result, the
    probe's summary)."""
    probe = subprocess.Popen(probe_command(target), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        result = work()
    finally:
        probe.send_signal(signal.SIGTERM)
        out, err = probe.communicate(timeout=120)
    if probe.returncode != 0:
        raise SystemExit(f"the probe failed:\n{out}{err}")
    return result, json.loads(out)

def report_refusals(what, busy, idle):
    if busy["answered"]:
        ratio = busy["p99_ms"] / idle["p99_ms"]
        print(f"refusal p50/p99 {what}: {busy['p50_ms']:.2f} / {busy['p99_ms']:.2f} ms "
              f"(max {busy['max_ms']:.1f} ms, {busy['answered']} requests; p99 {ratio:.2f}x idle, target <= 2)")
    else:
        print(f"refusal during {what}: the upload ended before a probe was answered (checkpoint too small)")

def report_cpu(what, wall, server, client, probe, idle, client_name="curl"):
    """CPU seconds per GB; the server's without what the probe's refusals cost it when idle."""
    gb = total / 1e9
    refusals = probe["answered"] * idle["cpu_each"]
    print(f"{what} CPU s/GB: server {(server - refusals) / gb:.2f} (+ {refusals / gb:.2f} for the "
          f"probe's {probe['answered']} refusals), {client_name} {client / gb:.2f} (wall {wall / gb:.2f} s/GB)")

oids = {p: sha(p) for p in files}
print(f"== {len(lfs)} LFS files, {total / 1e9:.3f} GB (each server probed with refusals on other connections while it ingests)")
print(f"probe: open loop, {PROBE_RATE} requests/s on {PROBE_CONNECTIONS} connections, latency from each scheduled send; idle {IDLE_SECONDS} s")
nginx_idle = idle_refusals(NGINX_REFUSAL, nginx_pid)
(t_nginx, cpu_nginx, cpu_curl_nginx), nginx_busy = probed(
    lambda: put_all([(p, f"{nginx}/{p.name}") for p in lfs], nginx_pid), NGINX_REFUSAL)
for p in lfs:
    assert (data / "nginx-root" / p.name).stat().st_size == p.stat().st_size
print(f"nginx dav PUT:     {t_nginx:.3f} s  {total / t_nginx / 1e6:.0f} MB/s")
report_cpu("nginx dav PUT", t_nginx, cpu_nginx, cpu_curl_nginx, nginx_busy, nginx_idle)
print(f"nginx 451 p50/p99 idle: {nginx_idle['p50_ms']:.2f} / {nginx_idle['p99_ms']:.2f} ms")
report_refusals("nginx during its PUTs (one worker: its 451s wait behind the PUTs)", nginx_busy, nginx_idle)
idle = idle_refusals(GATE_REFUSAL, gate_pid)
urls = gate_upload_urls()
(t_gate, cpu_gate, cpu_curl_gate), busy = probed(lambda: put_all(urls, gate_pid))
print(f"gate LFS PUT:      {t_gate:.3f} s  {total / t_gate / 1e6:.0f} MB/s  ({t_nginx / t_gate:.2f}x nginx; target >= 0.8)")
report_cpu("gate LFS PUT", t_gate, cpu_gate, cpu_curl_gate, busy, idle)

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
print(f"refusal p50/p99 idle:   {idle['p50_ms']:.2f} / {idle['p99_ms']:.2f} ms ({idle['answered']} requests)")
report_refusals("LFS PUTs", busy, idle)

def hf_upload(namespace, tok, xet):
    """(wall seconds, client CPU-seconds, gate CPU-seconds) of one `hf upload`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=gate, HF_TOKEN=tok, HF_HOME=str(data / f"hf-home-{namespace}"),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    os.sync()
    client, gate_before = children_cpu(), cpu_seconds(gate_pid)
    t = time.monotonic()
    run = subprocess.run(client_nice() + [hf, "upload", f"{namespace}/upload", str(release), "."], env=env,
                         capture_output=True, text=True)
    took = time.monotonic() - t
    if run.returncode != 0:
        raise SystemExit(f"hf upload ({'Xet' if xet else 'LFS'}) failed:\n{run.stdout}{run.stderr}")
    return took, children_cpu() - client, cpu_seconds(gate_pid) - gate_before

def cpu_report(wall, client, gate):
    return (f"CPU-seconds: client {client:.1f}, gate {gate:.1f} ({client / total * 1e9:.2f} + "
            f"{gate / total * 1e9:.2f} per GB; {(client + gate) / wall:.2f} cores busy)")

print("== end to end with the unchanged client (hf upload, start to exit after the commit)")
(t_lfs, *cpu_lfs), busy_lfs = probed(lambda: hf_upload("bench-lfs", token_lfs, xet=False))
cpu_lfs[1] = max(0.0, cpu_lfs[1] - idle["cpu_each"] * busy_lfs["answered"])
print(f"hf upload, LFS:    {t_lfs:.3f} s  {total / t_lfs / 1e6:.0f} MB/s  {cpu_report(t_lfs, *cpu_lfs)}")
report_refusals("hf upload LFS", busy_lfs, idle)
(t_xet, *cpu_xet), busy_xet = probed(lambda: hf_upload("bench-xet", token_xet, xet=True))
cpu_xet[1] = max(0.0, cpu_xet[1] - idle["cpu_each"] * busy_xet["answered"])
xorbs = list((data / "store" / "xet" / "bench-xet" / "xorbs").glob("*"))
if not xorbs:
    raise SystemExit("the Xet upload stored no xorb: the client did not take the Xet path")
sent = sum(p.stat().st_size for p in xorbs)
print(f"hf upload, Xet:    {t_xet:.3f} s  {total / t_xet / 1e6:.0f} MB/s  ({len(xorbs)} xorbs, {sent / 1e9:.3f} GB)  {cpu_report(t_xet, *cpu_xet)}")
report_refusals("hf upload Xet", busy_xet, idle)
ratio = lambda a, b: f"{a / b:.2f}x" if b > 0 else "n/a"
print(f"xet vs LFS: {t_xet / t_lfs:.2f}x (target <= 1.3); CPU-seconds: client {ratio(cpu_xet[0], cpu_lfs[0])}, "
      f"gate {ratio(cpu_xet[1], cpu_lfs[1])}; the Xet client alone is {ratio(cpu_xet[0], sum(cpu_lfs))} the LFS path's client + gate")
PY
