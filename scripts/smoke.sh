#!/usr/bin/env bash
# smoke.sh — `make run`'s setup and a short publish/play, as a new user
# would do it: install what is missing and build (make build), serve the
# embedded default config, publish 8 s of H.264 + Speex over RTMP with
# ffmpeg, and check with ffprobe that the HLS playlist and the RTMP play
# carry H.264 + AAC (the default transcodes Speex to AAC). CI runs it in
# a fresh minimal Debian (scripts/fresh-debian.sh -- bash scripts/smoke.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# A minimal Debian has no make: the one installer brings it (and the rest).
bash packaging/deps-debian.sh
make build
dir=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# A port nothing listens on (bash only: a minimal Debian has no python).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
rtmp=$(free_port) http=$(free_port)
printf 'listen: {rtmp: "127.0.0.1:%s", http: "127.0.0.1:%s"}\ndata_dir: %s/data\n' "$rtmp" "$http" "$dir" >"$dir/podium.yaml"
./bin/podium check --config "$dir/podium.yaml" >/dev/null
./bin/podium serve --config "$dir/podium.yaml" >"$dir/podium.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$rtmp") 2>/dev/null && break
  sleep 0.1
done

ffmpeg -hide_banner -v error -nostdin -re \
  -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=440:sample_rate=16000 -t 8 \
  -c:v libx264 -preset ultrafast -g 25 -pix_fmt yuv420p -c:a libspeex -ar 16000 -ac 1 \
  -f flv "rtmp://127.0.0.1:$rtmp/live/smoke" >"$dir/ffmpeg.log" 2>&1 &
pids+=($!)

probe() { { timeout 10 ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$1" 2>/dev/null || true; } | grep . | sort -u | tr '\n' ' ' || true; }
ok=0
for _ in $(seq 30); do
  sleep 1
  hls=$(probe "http://127.0.0.1:$http/live/smoke.m3u8")
  if [ "$hls" = "aac h264 " ]; then ok=1; break; fi
done
[ "$ok" = 1 ] || { echo "smoke: HLS is '$hls', want 'aac h264'"; cat "$dir/podium.log" "$dir/ffmpeg.log"; exit 1; }
play=$(probe "rtmp://127.0.0.1:$rtmp/live/smoke?vhost=transcode")
[ "$play" = "aac h264 " ] || { echo "smoke: RTMP play is '$play', want 'aac h264'"; cat "$dir/podium.log"; exit 1; }
echo "smoke: ok (publish H.264+Speex over RTMP; HLS and RTMP play are H.264+AAC)"
