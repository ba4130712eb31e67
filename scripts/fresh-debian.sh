#!/usr/bin/env bash
# fresh-debian.sh [--keep] [--rebuild] [--ref REF] [--] COMMAND...
#
# Runs COMMAND (default: packaging/deps-debian.sh, then make test) in a clean clone of this repository
# inside a fresh minimal Debian 12 (debootstrap --variant=minbase
# bookworm): what a school's IT person has after installing Debian, with
# nothing installed by hand. The minbase tree is built once and cached in
# $PODIUM_FRESH_CACHE (default /var/cache/podium-fresh); each run gets a
# throwaway copy-on-write layer over it (overlayfs), so the cache stays
# pristine. Copied in from the host, and nothing else: its apt sources (the
# same mirrors), its CA certificates, its DNS resolver config and its Go
# module proxy settings (GOPROXY, GOSUMDB, GONOSUMDB, GOPRIVATE,
# GONOPROXY, GOINSECURE, GOFLAGS from `go env`), and its Go toolchain
# (bind-mounted read-only at /usr/local/go: Debian 12 ships no Go 1.26).
#
# Needs root and the host packages debootstrap (and util-linux's mount,
# which every Debian has). The clone is of REF (default HEAD): commit
# what you want tested.
#
#   scripts/fresh-debian.sh                       # make test
#   scripts/fresh-debian.sh -- make build         # any command
#   scripts/fresh-debian.sh --keep -- bash        # look around after
#
# Downloaded .debs and Go modules are cached in $PODIUM_FRESH_CACHE between
# runs (--no-download-cache: download everything again); builds never are.
set -euo pipefail

keep=0 rebuild=0 ref=HEAD downloads=1
while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=1; shift ;;
    --rebuild) rebuild=1; shift ;;
    --ref) ref=$2; shift 2 ;;
    --no-download-cache) downloads=0; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
# A minimal Debian has no make: the one installer brings it first.
[ $# -gt 0 ] || set -- bash -c 'bash packaging/deps-debian.sh && make test'

if [ "$(id -u)" -ne 0 ]; then echo "fresh-debian: needs root (debootstrap, chroot, mounts)" >&2; exit 2; fi
command -v debootstrap >/dev/null || { echo "fresh-debian: needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse --verify "$ref^{commit}")
cache=${PODIUM_FRESH_CACHE:-/var/cache/podium-fresh}
base=$cache/bookworm-minbase
goroot=$(go env GOROOT 2>/dev/null || echo /usr/local/go)

# The mirror: the host's first Debian URI (deb822 or one-line sources).
mirror=$(grep -hoE '^(URIs:|deb)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | awk '{print $2}' | grep -vE 'security' | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # one builder of the cache at a time; runs share it read-only
if [ "$rebuild" = 1 ]; then rm -rf "$base"; fi
if [ ! -f "$base/.complete" ]; then
  echo "fresh-debian: building the minbase bookworm cache in $base (once; from $mirror)"
  rm -rf "$base.tmp"
  debootstrap --variant=minbase bookworm "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  touch "$base.tmp/.complete"
  mv "$base.tmp" "$base"
fi
flock -u 9

work=$(mktemp -d "$cache/run.XXXXXX")
root=$work/root
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  if [ "$keep" = 1 ]; then echo "fresh-debian: kept $work (remove it with rm -rf)"; else rm -rf "$work"; fi
}
trap cleanup EXIT
mnt() { mount "$@"; mounts+=("${@: -1}"); }

mkdir -p "$work/upper" "$work/ovl" "$root"
if mount -t overlay overlay -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/ovl" "$root" 2>/dev/null; then
  mounts+=("$root")
else
  echo "fresh-debian: no overlayfs here; copying the cache (slower)"
  cp -a "$base/." "$root/"
fi
mnt -t proc proc "$root/proc"
mnt -t sysfs sys "$root/sys"
mnt --rbind /dev "$root/dev"
mkdir -p "$root/dev/shm" && mnt -t tmpfs -o size=1g shm "$root/dev/shm" # chromium
mnt -t tmpfs -o size=8g tmp "$root/tmp"
mkdir -p "$root/usr/local/go" && mnt --bind "$goroot" "$root/usr/local/go" && mount -o remount,bind,ro "$root/usr/local/go"
# Downloads only (apt's .deb files, Go modules: content-addressed, checked
# by apt and go.sum) are kept between runs, unless --no-download-cache;
# never a build cache, so every run builds from scratch.
if [ "$downloads" = 1 ]; then
  mkdir -p "$cache/apt-archives/partial" "$cache/gomodcache" "$root/var/cache/apt/archives" "$root/root/go/pkg/mod"
  mnt --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
  mnt --bind "$cache/gomodcache" "$root/root/go/pkg/mod"
fi

# The host's apt sources, CA certificates and resolver, nothing else.
rm -rf "$root/etc/apt/sources.list.d" && cp -a /etc/apt/sources.list.d "$root/etc/apt/"
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/" || rm -f "$root/etc/apt/sources.list"
# A disabled third-party list on the host stays out.
find "$root/etc/apt/sources.list.d" -type f ! -name '*.sources' ! -name '*.list' -delete
[ -d /etc/ssl/certs ] && mkdir -p "$root/etc/ssl" && cp -aL /etc/ssl/certs "$root/etc/ssl/"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

# A clean clone of the commit under test.
git clone -q --no-hardlinks "$repo" "$root/src/podium"
git -C "$root/src/podium" checkout -q --detach "$commit"

env=(HOME=/root PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive TERM=dumb)
for k in GOPROXY GOSUMDB GONOSUMDB GOPRIVATE GONOPROXY GOINSECURE GOFLAGS; do
  v=$(go env "$k" 2>/dev/null || true)
  [ -n "$v" ] && env+=("$k=$v")
done

echo "fresh-debian: running '$*' in a clean clone of ${commit:0:12} on minimal Debian $(cat "$root/etc/debian_version")"
start=$(date +%s)
rc=0
chroot "$root" /usr/bin/env -i "${env[@]}" /bin/bash -c 'cd /src/podium && exec "$@"' fresh "$@" || rc=$?
echo "fresh-debian: '$*' exited $rc after $(( $(date +%s) - start )) s"
exit $rc
