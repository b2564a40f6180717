#!/usr/bin/env bash
# Start a throw-away Ceph 20 RADOS Gateway (flexible checksums, conditional writes) on
# 127.0.0.1, beside the project's Ceph 16 gateway. See README.md next to this file.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PREFIX="${CHECKSUM_S3_PREFIX:-/opt/zipstream-ceph-checksum}"

usage() {
  cat <<'USAGE'
usage: infra/checksum-s3/start.sh [--port PORT] [--data-dir DIR]

Starts ceph-mon, ceph-osd and radosgw of the Ceph installed by install.sh (S3 on
http://127.0.0.1:PORT), writes DIR/env (S3_CHECKSUM_* export lines) and prints it.
Defaults: PORT=$CHECKSUM_S3_PORT or 7490, DIR=$CHECKSUM_S3_DIR or <repo>/.checksum-s3.
The cluster lives in DIR/cluster and is brought up by infra/local-s3/start.sh (same
config, same users and keys, monitor on PORT+10000) with this Ceph's binaries first on PATH.
Object store: $CHECKSUM_S3_OBJECTSTORE, default memstore (in memory: data dies with the
daemons, and big objects cost RAM; set bluestore for large data).
Idempotent like infra/local-s3/start.sh.
USAGE
}

PORT="${CHECKSUM_S3_PORT:-7490}"
DATA_DIR="${CHECKSUM_S3_DIR:-$REPO/.checksum-s3}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) PORT="${2:?--port needs a value}"; shift 2 ;;
    --port=*) PORT="${1#*=}"; shift ;;
    --data-dir) DATA_DIR="${2:?--data-dir needs a value}"; shift 2 ;;
    --data-dir=*) DATA_DIR="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "[checksum-s3] ERROR: unknown argument: $1 (see --help)" >&2; exit 1 ;;
  esac
done
[[ -x "$PREFIX/bin/radosgw" ]] || { echo "[checksum-s3] ERROR: no Ceph in $PREFIX; run infra/checksum-s3/install.sh first" >&2; exit 1; }
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
VERSION="$(cat "$PREFIX/VERSION")"

# The same bring-up as the Ceph 16 gateway, with this Ceph's wrappers found first on PATH.
rm -f "$DATA_DIR/env"
PATH="$PREFIX/bin:$PATH" LOCAL_S3_OBJECTSTORE="${CHECKSUM_S3_OBJECTSTORE:-memstore}" \
  LOCAL_S3_MON_PORT="${CHECKSUM_S3_MON_PORT:-$((PORT + 10000))}" \
  bash "$REPO/infra/local-s3/start.sh" --data-dir "$DATA_DIR/cluster" --port "$PORT" >/dev/null

# A different server could already answer on PORT (start.sh refuses a foreign one, but not a
# Ceph 16 cluster left in DIR/cluster by hand): make sure this is the new gateway.
server="$(curl -fsS -m 5 -o /dev/null -D - "http://127.0.0.1:$PORT/" | tr -d '\r' | awk -F': ' 'tolower($1) == "server" { print $2 }')"
[[ "$server" == *tentacle* || "$server" == *squid* ]] || {
  echo "[checksum-s3] ERROR: http://127.0.0.1:$PORT answers as '$server', not Ceph $VERSION" >&2; exit 1; }

# shellcheck disable=SC1091
(
  . "$DATA_DIR/cluster/env"
  cat >"$DATA_DIR/env.tmp" <<ENV
export S3_CHECKSUM_ENDPOINT=$S3_ENDPOINT
export S3_CHECKSUM_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
export S3_CHECKSUM_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export S3_CHECKSUM_REGION=$AWS_REGION
export S3_CHECKSUM_KIND=ceph-$VERSION
ENV
)
mv "$DATA_DIR/env.tmp" "$DATA_DIR/env"
echo "[checksum-s3] Ceph $VERSION gateway ready at http://127.0.0.1:$PORT (data dir $DATA_DIR)" >&2
cat "$DATA_DIR/env"
