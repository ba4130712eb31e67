#!/usr/bin/env bash
# Builds the podium .deb from a built binary:
#     packaging/deb.sh BIN [OUTDIR]     ->  OUTDIR/podium_<version>_amd64.deb  (OUTDIR: dist)
# `make deb` runs it on bin/podium. The version is $VERSION, else what
# packaging/version.sh prints (the Makefile passes the one it linked into
# the binary). nfpm comes from the Go module proxy at an exact version.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:?usage: packaging/deb.sh BIN [OUTDIR]}
out=${2:-$repo/dist}
version=${VERSION:-$("$repo/packaging/version.sh")}
GO=${GO:-go}
NFPM=${NFPM:-github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0}

[ -x "$bin" ] || { echo "deb: $bin is not an executable" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
deb="$out/podium_${version}_amd64.deb"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

install -m 0755 "$bin" "$stage/podium"
# /etc/podium/podium.yaml is the embedded default with the package's data
# directory; fail loudly if the default's data_dir line ever changes shape.
sed 's|^data_dir: \./data$|data_dir: /var/lib/podium   # the package'"'"'s data directory (built-in default: ./data)|' \
  "$repo/configs/podium.yaml" > "$stage/podium.yaml"
grep -q '^data_dir: /var/lib/podium ' "$stage/podium.yaml" || {
  echo "deb: configs/podium.yaml has no 'data_dir: ./data' line to point at /var/lib/podium" >&2
  exit 1
}
install -m 0644 "$repo/packaging/podium.service" "$stage/podium.service"
install -m 0644 "$repo/docs/deploy.md" "$stage/deploy.md"
mkdir "$stage/examples"
for role in relay master slave recorder edge; do
  install -m 0644 "$repo/configs/$role.yaml" "$stage/examples/$role.yaml"
done
for s in postinst prerm postrm; do
  install -m 0755 "$repo/packaging/deb/$s.sh" "$stage/$s.sh"
done

rm -f "$deb"
(cd "$stage" && VERSION="$version" "$GO" run "$NFPM" package \
  --config "$repo/packaging/nfpm.yaml" --packager deb --target "$deb")
echo "deb: $deb"
