#!/usr/bin/env bash
# Installs everything zipstream's jobs and tests need on a fresh Debian/Ubuntu machine with Node
# and npm (any version): Node 24 from the npm registry when the machine's is older than 22.12, the
# archive readers used as independent checkers, the local Ceph gateway, pnpm, the workspace's npm
# dependencies (from the lockfile), and builds every package. Idempotent: a second run only
# checks. Node 24 and pnpm go into .tmp/ for this project's scripts (scripts/toolchain.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# --- Node >= 22.12 and the pinned pnpm, first on PATH ---------------------------------------
# shellcheck source=scripts/toolchain.sh
source scripts/toolchain.sh
log "node $(node --version), pnpm $(pnpm --version)"

# --- Debian packages: external ZIP readers and the local Ceph RADOS Gateway -----------------
if [ "${ZIPSTREAM_SKIP_APT:-0}" != 1 ]; then
  bash scripts/install-readers.sh
  bash infra/local-s3/install.sh
  # A Ceph 20 gateway beside it, for the flexible-checksum paths (copy assembly); ~25 s.
  bash infra/checksum-s3/install.sh
fi

# --- workspace -------------------------------------------------------------------------------
log "installing npm dependencies (frozen lockfile)"
CI=true pnpm install --frozen-lockfile --reporter=append-only 2>&1 | tail -n 5 >&2
log "building packages"
pnpm build >&2
log "ready"
