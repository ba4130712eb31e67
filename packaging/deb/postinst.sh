#!/bin/sh
# podium .deb postinst: the podium user, its data directory, the service.
set -e

if [ "$1" = configure ]; then
  # The render group owns /dev/dri/renderD* (VAAPI, Quick Sync). udev
  # creates it on any machine with a GPU; a container may lack it.
  getent group render >/dev/null || groupadd --system render
  getent group podium >/dev/null || groupadd --system podium
  if ! getent passwd podium >/dev/null; then
    useradd --system --gid podium --home-dir /var/lib/podium --no-create-home \
      --shell /usr/sbin/nologin --comment "Podium live video" podium
  fi
  # video: /dev/dri/card* and NVIDIA's nodes on some setups; render: render nodes.
  usermod -a -G video,render podium
  install -d -o podium -g podium -m 0750 /var/lib/podium
  # The config may hold passwords and publish keys: root writes it, podium reads it.
  chown root:podium /etc/podium/podium.yaml
  chmod 0640 /etc/podium/podium.yaml
fi

# What dh_installsystemd would do: enable on first install, restart on upgrade.
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
  if command -v deb-systemd-helper >/dev/null 2>&1; then
    deb-systemd-helper unmask podium.service >/dev/null || true
    if deb-systemd-helper --quiet was-enabled podium.service; then
      deb-systemd-helper enable podium.service >/dev/null || true
    else
      deb-systemd-helper update-state podium.service >/dev/null || true
    fi
  fi
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    if [ -n "$2" ]; then action=restart; else action=start; fi
    deb-systemd-invoke "$action" podium.service >/dev/null || true
  fi
fi
exit 0
