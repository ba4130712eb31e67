#!/usr/bin/env bash
# Prints Podium's version: what `podium version` says (the Makefile passes it
# to -ldflags) and what the .deb is called. It is always a valid Debian
# version (starts with a digit, no hyphen):
#   on a release tag vX.Y.Z, clean tree:   X.Y.Z
#   vX.Y.Z-rc1 (a pre-release tag):       X.Y.Z~rc1           (sorts before X.Y.Z)
#   N commits after tag vX.Y.Z:            X.Y.Z+N.gSHA        (sorts after X.Y.Z)
#   no release tag yet:                    BASE~git.SHA        (sorts before BASE, the VERSION file)
#   a tree with uncommitted changes:       any of the above + .dirty
#   no git at all (e.g. a Docker build):   BASE
set -euo pipefail
cd "$(dirname "$0")/.."

base=$(tr -d ' \n' < VERSION)
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "$base"
  exit 0
fi
dirty=""
if ! git diff --quiet HEAD -- 2>/dev/null; then dirty=".dirty"; fi
if desc=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
  desc=${desc#v}
  after=""
  if [[ $desc =~ ^(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
    desc=${BASH_REMATCH[1]}
    after="+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
  fi
  # A pre-release tag (v1.2.0-rc1) becomes 1.2.0~rc1: before 1.2.0.
  echo "${desc//-/\~}${after}${dirty}"
  exit 0
fi
echo "${base}~git.$(git rev-parse --short HEAD)${dirty}"
