# Shared helpers for start.sh / stop.sh. Sourced, not executed.
# shellcheck shell=bash

LOCAL_S3_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Fixed, deterministic credentials: the gateway only listens on 127.0.0.1 and every
# cluster is throw-away, so predictable keys make test logs and env files reproducible.
# AWS-shaped: 20-character access key id, 40-character secret.
LOCAL_S3_USER="zipstream"
LOCAL_S3_ACCESS_KEY="ZIPSTREAMLOCALKEY001"
LOCAL_S3_SECRET_KEY="zipstreamLocalSecretKey00000000000000001"
LOCAL_S3_SECOND_USER="zipstream-second"
LOCAL_S3_SECOND_ACCESS_KEY="ZIPSTREAMLOCALKEY002"
LOCAL_S3_SECOND_SECRET_KEY="zipstreamLocalSecretKey00000000000000002"

# Daemons in start order; stop.sh stops them in reverse.
LOCAL_S3_DAEMONS=(mon.a osd.0 client.rgw.a)

log() { printf '[local-s3] %s\n' "$*" >&2; }
die() { printf '[local-s3] ERROR: %s\n' "$*" >&2; exit 1; }

# pid_alive PIDFILE -> 0 when the file names a live process.
pid_alive() {
  local f="$1" pid
  [[ -s "$f" ]] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# stop_daemon DATA_DIR NAME: SIGTERM via the pid file, wait up to 20 s, then SIGKILL.
stop_daemon() {
  local dir="$1" name="$2" f pid i
  f="$dir/run/$name.pid"
  pid_alive "$f" || { rm -f "$f"; return 0; }
  pid="$(tr -dc '0-9' <"$f")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
    sleep 0.1
  done
  log "$name (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$f"
}

# parse_common_args "$@": sets DATA_DIR, PORT, WIPE, REST from options and env.
parse_common_args() {
  DATA_DIR="${LOCAL_S3_DIR:-$LOCAL_S3_REPO/.local-s3}"
  PORT="${LOCAL_S3_PORT:-7480}"
  WIPE=0
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --data-dir) DATA_DIR="${2:?--data-dir needs a value}"; shift 2 ;;
      --data-dir=*) DATA_DIR="${1#*=}"; shift ;;
      --port) PORT="${2:?--port needs a value}"; shift 2 ;;
      --port=*) PORT="${1#*=}"; shift ;;
      --wipe) WIPE=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
  done
  [[ "$PORT" =~ ^[0-9]+$ ]] && ((PORT > 0 && PORT < 55000)) || die "invalid port: $PORT"
  mkdir -p "$DATA_DIR"
  DATA_DIR="$(cd "$DATA_DIR" && pwd)"
}

# lock_data_dir: serialize start.sh/stop.sh on one data dir (parallel test workers may all
# call start.sh at once). The lock file survives wipes (wipe_data_dir skips it).
lock_data_dir() {
  exec 9>"$DATA_DIR/.lock"
  flock -w 600 9 || die "timed out waiting for the lock on $DATA_DIR/.lock"
}

wipe_data_dir() {
  find "$DATA_DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
}
