#!/usr/bin/env bash
# Media figures for docs/benchmarks.md: upload and download throughput through a backend,
# photos completed (decoded, stripped, thumbnailed) per second, and 1:1 message traffic
# with and without photos being processed at the same time.
#   scripts/bench-media.sh disk        the embedded store (files in the data directory)
#   scripts/bench-media.sh s3          S3 on SeaweedFS (scripts/seaweedfs.sh, 127.0.0.1:8333)
# BENCH_BIN=path runs that binary instead of building this checkout. Needs curl, jq and
# ImageMagick (`/usr/bin/convert`, or CONVERT=path) for the test photo.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-disk}
files=${BENCH_FILES:-8}          # uploads of 25 MiB each
photos=${BENCH_PHOTOS:-12}       # 12-megapixel JPEGs completed
rate=${BENCH_RATE:-5000}         # 1:1 messages per second during the traffic runs
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
if [[ -n "${BENCH_BIN:-}" ]]; then
  bin="$BENCH_BIN"
else
  cargo build --release -q -p parley-server
  bin="$CARGO_TARGET_DIR/release/parley"
fi
work=$(mktemp -d)
port=${BENCH_PORT:-19100}
# shellcheck source=scripts/bench-limits.sh
source scripts/bench-limits.sh
export PARLEY_MEDIA__UPLOADS_PER_MINUTE=100000 PARLEY_MEDIA__QUOTA_BYTES=1000000000000
if [[ "$backend" == s3 ]]; then
  export PARLEY_MEDIA__S3__BUCKET=parley-test PARLEY_MEDIA__S3__ENDPOINT=http://127.0.0.1:8333 \
    PARLEY_MEDIA__S3__ACCESS_KEY_ID=parley PARLEY_MEDIA__S3__SECRET_ACCESS_KEY=parley-secret \
    PARLEY_MEDIA__S3__ALLOW_HTTP=true PARLEY_MEDIA__S3__PREFIX="bench-$$"
fi
RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 50); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.2; done

api() { # METHOD PATH [BODY]
  curl -sf -X "$1" "$base/api/v1$2" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' ${3:+-d "$3"}
}
now() { date +%s.%N; }
token=$(curl -sf -X POST "$base/api/v1/auth/register" -H 'content-type: application/json' \
  -d "{\"username\":\"bench$$\",\"password\":\"password-123\"}" | jq -r .token)

head -c $((25 * 1024 * 1024)) /dev/urandom > "$work/file.bin"
size=$(stat -c %s "$work/file.bin")
ids=()
put_total=0
complete_total=0
for _ in $(seq 1 "$files"); do
  upload=$(api POST /media "{\"content_type\":\"application/octet-stream\",\"size\":$size}")
  url=$(jq -r .upload_url <<<"$upload"); id=$(jq -r .media_id <<<"$upload")
  [[ "$url" == http* ]] || url="$base$url"
  t0=$(now); curl -sf -X PUT --data-binary @"$work/file.bin" "$url" >/dev/null; t1=$(now)
  api POST "/media/$id/complete" '{}' >/dev/null; t2=$(now)
  put_total=$(echo "$put_total + $t1 - $t0" | bc); complete_total=$(echo "$complete_total + $t2 - $t1" | bc)
  ids+=("$id")
done
get_total=0
for id in "${ids[@]}"; do
  url=$(api GET "/media/$id" | jq -r .url); [[ "$url" == http* ]] || url="$base$url"
  t0=$(now); curl -sf "$url" -o /dev/null; t1=$(now)
  get_total=$(echo "$get_total + $t1 - $t0" | bc)
done
mib=$(echo "$files * $size / 1048576" | bc)
printf 'backend %s: %d uploads of %d MiB\n' "$backend" "$files" $((size / 1048576))
printf '  upload (PUT)       %6.0f MiB/s\n' "$(echo "$mib / $put_total" | bc -l)"
printf '  complete (checks)  %6.3f s per 25 MiB file\n' "$(echo "$complete_total / $files" | bc -l)"
printf '  download (GET)     %6.0f MiB/s\n' "$(echo "$mib / $get_total" | bc -l)"

"${CONVERT:-/usr/bin/convert}" -size 4000x3000 gradient:steelblue-orange -attenuate 0.4 +noise Gaussian -quality 90 "$work/photo.jpg"
photo_size=$(stat -c %s "$work/photo.jpg")
upload_photos() { # uploads the photo $photos times (not completed yet) into photo_ids
  photo_ids=()
  for _ in $(seq 1 "$photos"); do
    upload=$(api POST /media "{\"content_type\":\"image/jpeg\",\"size\":$photo_size}")
    url=$(jq -r .upload_url <<<"$upload"); [[ "$url" == http* ]] || url="$base$url"
    curl -sf -X PUT --data-binary @"$work/photo.jpg" "$url" >/dev/null
    photo_ids+=("$(jq -r .media_id <<<"$upload")")
  done
}
upload_photos
complete_photos() { # completes every uploaded photo, two requests at a time
  printf '%s\n' "${photo_ids[@]}" | xargs -P 2 -I{} curl -sf -X POST "$base/api/v1/media/{}/complete" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' -d '{}' -o /dev/null
}
t0=$(now); complete_photos; t1=$(now)
printf '  photos (12 MP JPEG, %.1f MB): %.2f completed per second\n' \
  "$(echo "$photo_size / 1000000" | bc -l)" "$(echo "$photos / ($t1 - $t0)" | bc -l)"

common=(--server "$base" --server-pid "$server" --users 200 --conversations 100 --group-ratio 0
  --rate "$rate" --duration 20s --warmup 5s)
echo "1:1 traffic at $rate msg/s, alone:"
"$bin" bench "${common[@]}" 2>&1 | grep -E 'sends|deliveries|throughput|latency|server RSS' || true
# The same photos again (new uploads), completed while the traffic runs.
upload_photos
(sleep 4; complete_photos) &
processing=$!
echo "1:1 traffic at $rate msg/s, while $photos photos are processed:"
"$bin" bench "${common[@]}" 2>&1 | grep -E 'sends|deliveries|throughput|latency|server RSS' || true
wait $processing
