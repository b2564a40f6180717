#!/usr/bin/env bash
# Installs everything zipstream's jobs and tests need on a fresh Debian/Ubuntu machine with Node:
# the archive readers used as independent checkers, the local Ceph gateway, pnpm, the workspace's
# npm dependencies (from the lockfile), and builds every package. Idempotent: a second run only
# checks.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# Node itself is a precondition (the README says so); check the version we support.
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("zipstream needs Node >= 20.19, found "+process.version); process.exit(1) }'

# --- Debian packages: external ZIP readers and the local Ceph RADOS Gateway -----------------
if [ "${ZIPSTREAM_SKIP_APT:-0}" != 1 ]; then
  bash scripts/install-readers.sh
  bash infra/local-s3/install.sh
  # A Ceph 20 gateway beside it, for the flexible-checksum paths (copy assembly); ~25 s.
  bash infra/checksum-s3/install.sh
fi

# --- pnpm ------------------------------------------------------------------------------------
want_pnpm=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$want_pnpm" ]; then
  log "installing pnpm $want_pnpm with npm"
  npm install -g --no-fund --no-audit "pnpm@$want_pnpm" >/dev/null
fi

# --- workspace -------------------------------------------------------------------------------
log "installing npm dependencies (frozen lockfile)"
CI=true pnpm install --frozen-lockfile --reporter=append-only 2>&1 | tail -n 5 >&2
log "building packages"
pnpm build >&2
log "ready"
