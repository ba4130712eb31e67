#!/usr/bin/env bash
# Installs the Debian 12 packages Podium builds and tests with. Idempotent:
# packages already installed are skipped, and apt-get runs only when needed.
set -euo pipefail

PKGS=(
  # build: go-astiav links FFmpeg 5.1's libraries through pkg-config; cgo
  # needs the C library's headers, which a minimal Debian lacks (grp.h)
  pkg-config gcc libc6-dev
  # make itself: a minimal Debian (debootstrap --variant=minbase) lacks it
  make
  libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev
  libswscale-dev libswresample-dev libavdevice-dev
  # tests: real peers on the media path
  ffmpeg nginx libnginx-mod-rtmp
  # benchmarks: process CPU/RSS sampling
  procps
  # browser tests: the Go tests drive headless Chromium (chromedp); the
  # players (hls.js, mpegts.js) are vendored in ui/assets/vendor
  chromium
  # cluster tests: each starts its own redis-server on a free port
  redis-server
  # network-fault tests: veth pairs in namespaces, tbf, nftables drop rules
  iproute2 nftables
  # make fresh-test / fresh-smoke: a minimal Debian 12 chroot (scripts/fresh-debian.sh)
  debootstrap
  # packaging tests: systemd-analyze verify of the .deb's unit
  systemd
  # packaging tests: the version script reads `git describe` (a minimal
  # Debian has no git)
  git
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "deps-debian: need root to install: ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi

echo "deps-debian: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx is a test peer, not a service of this box: never leave it running.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; fi
$SUDO service nginx stop >/dev/null 2>&1 || true
# Likewise redis-server: the tests start their own on free ports.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
$SUDO service redis-server stop >/dev/null 2>&1 || true
