#!/bin/sh
# podium .deb prerm: stop the service before its binary goes away.
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  deb-systemd-invoke stop podium.service >/dev/null || true
fi
exit 0
