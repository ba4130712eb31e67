#!/usr/bin/env bash
# Health check for containers: exit 0 when Podium's HTTP listener answers
# GET /healthz with 200, else 1. Uses bash's /dev/tcp, so the slim image
# needs no curl. The address is $PODIUM_HEALTH_ADDR, else the listen.http
# override $PODIUM_LISTEN_HTTP, else :8080 (an empty or 0.0.0.0 host means
# this machine).
set -uo pipefail

addr=${PODIUM_HEALTH_ADDR:-${PODIUM_LISTEN_HTTP:-:8080}}
host=${addr%:*}
port=${addr##*:}
host=${host#[}
host=${host%]}
case "$host" in "" | 0.0.0.0 | "::") host=127.0.0.1 ;; esac

if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
  echo "podium healthcheck: nothing listens on $host:$port" >&2
  exit 1
fi
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
status=""
IFS=$' \t\r' read -r -t 5 proto code _ <&3 && status="$proto $code"
exec 3<&-
if [[ $status =~ ^HTTP/[0-9.]+\ 200$ ]]; then
  exit 0
fi
echo "podium healthcheck: GET http://$host:$port/healthz answered '${status:-nothing}'" >&2
exit 1
