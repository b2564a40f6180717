#!/usr/bin/env bash
# Install the Debian packages the local Ceph RADOS Gateway needs (ceph-mon, ceph-osd, radosgw:
# ~60 MB, ~40 s). Idempotent: does nothing when the binaries are already there.
set -euo pipefail

need=()
for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool; do
  command -v "$b" >/dev/null 2>&1 || need+=("$b")
done
for b in curl uuidgen flock; do
  command -v "$b" >/dev/null 2>&1 || need+=("$b")
done
if [[ ${#need[@]} -eq 0 ]]; then
  echo "[local-s3] ceph-mon, ceph-osd and radosgw already installed" >&2
  exit 0
fi
echo "[local-s3] missing: ${need[*]}; installing Debian packages" >&2
[[ $EUID -eq 0 ]] || { echo "[local-s3] ERROR: install.sh must run as root" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
# ceph-osd's postinst may try to start services: there is no init system to talk to here,
# so policy-rc.d forbids it for the duration of the install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
trap '((created_policy)) && rm -f "$policy"' EXIT

apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends ceph-mon ceph-osd radosgw curl uuid-runtime util-linux </dev/null
echo "[local-s3] installed: $(ceph --version)" >&2
