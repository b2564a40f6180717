#!/usr/bin/env bash
# Quick start: installs everything, starts a local S3 (Ceph RADOS Gateway), fills a bucket,
# zips it into one archive in S3 with zipS3Keys, verifies the archive, prints a summary.
# The gateway keeps running afterwards (stop it with: bash infra/local-s3/stop.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Node (>= 22.12) and pnpm that setup.sh chose or fetched into .tmp/.
# shellcheck source=scripts/toolchain.sh
source scripts/toolchain.sh
bash infra/local-s3/start.sh
# shellcheck disable=SC1091
source .local-s3/env
node scripts/demo.mjs
