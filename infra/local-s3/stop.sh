#!/usr/bin/env bash
# Stop the local Ceph RADOS Gateway started by start.sh (via its pid files), optionally wiping
# its data directory. See README.md next to this file.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
usage: infra/local-s3/stop.sh [--data-dir DIR] [--wipe]

Stops radosgw, ceph-osd and ceph-mon of the cluster in DIR (SIGTERM through the pid files in
DIR/run, then SIGKILL after 3 s; the data is never reused). --wipe also deletes the cluster's files.
Defaults: DIR=$LOCAL_S3_DIR or <repo>/.local-s3.
EOF
}

parse_common_args "$@"
lock_data_dir
[[ -d "$DATA_DIR/run" || -f "$DATA_DIR/ceph.conf" ]] || { log "nothing to stop in $DATA_DIR"; exit 0; }

# Mark the cluster as not running first, so that a concurrent start.sh cannot mistake it
# for a healthy one while the daemons go down.
rm -f "$DATA_DIR/env"
stop_all "$DATA_DIR"
log "stopped (data dir $DATA_DIR)"
if ((WIPE)); then
  wipe_data_dir
  log "wiped $DATA_DIR"
fi
