#!/bin/sh
# podium .deb postrm. remove: keep config, data and user. purge: delete
# them all (HLS segments and generated secrets in /var/lib/podium too).
set -e
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null 2>&1; then
  deb-systemd-helper mask podium.service >/dev/null || true
fi
if [ "$1" = purge ]; then
  if command -v deb-systemd-helper >/dev/null 2>&1; then
    deb-systemd-helper purge podium.service >/dev/null || true
    deb-systemd-helper unmask podium.service >/dev/null || true
  fi
  rm -rf /var/lib/podium /etc/podium
  if getent passwd podium >/dev/null; then userdel podium >/dev/null 2>&1 || true; fi
  if getent group podium >/dev/null; then groupdel podium >/dev/null 2>&1 || true; fi
fi
exit 0
