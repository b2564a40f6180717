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

# The daemons, by their pid file names in DATA_DIR/run.
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

# wait_gone DEADLINE_US PID...: waits until every PID has exited or the wall clock (microseconds,
# EPOCHREALTIME) passes DEADLINE_US, polling every 0.1 s; prints the PIDs still alive. A wall-clock
# deadline, not a poll count: on a loaded machine each poll takes longer than its sleep.
wait_gone() {
  local deadline="$1" pid alive=()
  shift
  local pids=("$@")
  while (( ${#pids[@]} > 0 && ${EPOCHREALTIME/./} < deadline )); do
    sleep 0.1
    alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    pids=("${alive[@]}")
  done
  echo "${pids[@]}"
}

# stop_all DATA_DIR: SIGTERM to every daemon with a live pid file at once, a 3 s grace, then
# SIGKILL (and up to 5 s for the kernel to reap them). The data is never reused (start.sh always
# builds a new cluster), so an orderly shutdown buys nothing, and the OSD would wait seconds to
# tell a monitor that is itself going down.
stop_all() {
  local dir="$1" d f pid pids=()
  for d in "${LOCAL_S3_DAEMONS[@]}"; do
    f="$dir/run/$d.pid"
    if pid_alive "$f"; then
      pid="$(tr -dc '0-9' <"$f")"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  # shellcheck disable=SC2207
  pids=($(wait_gone $(( ${EPOCHREALTIME/./} + 3000000 )) "${pids[@]}"))
  if [[ ${#pids[@]} -gt 0 ]]; then
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait_gone $(( ${EPOCHREALTIME/./} + 5000000 )) "${pids[@]}" >/dev/null
  fi
  for d in "${LOCAL_S3_DAEMONS[@]}"; do rm -f "$dir/run/$d.pid"; done
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
