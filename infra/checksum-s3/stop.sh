#!/usr/bin/env bash
# Stop the gateway started by infra/checksum-s3/start.sh; --wipe deletes its data.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DATA_DIR="${CHECKSUM_S3_DIR:-$REPO/.checksum-s3}"
wipe=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data-dir) DATA_DIR="${2:?--data-dir needs a value}"; shift 2 ;;
    --data-dir=*) DATA_DIR="${1#*=}"; shift ;;
    --wipe) wipe=(--wipe); shift ;;
    -h|--help) echo "usage: infra/checksum-s3/stop.sh [--data-dir DIR] [--wipe]"; exit 0 ;;
    *) echo "[checksum-s3] ERROR: unknown argument: $1" >&2; exit 1 ;;
  esac
done
[[ -d "$DATA_DIR/cluster" ]] || { echo "[checksum-s3] nothing to stop in $DATA_DIR" >&2; exit 0; }
rm -f "$DATA_DIR/env"
bash "$REPO/infra/local-s3/stop.sh" --data-dir "$DATA_DIR/cluster" "${wipe[@]}"
