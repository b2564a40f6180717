#!/usr/bin/env bash
# Installs the external ZIP readers used by test/interop (@zipstream/interop) on Debian/Ubuntu:
# Info-ZIP unzip/zip, 7-Zip, libarchive's bsdtar, Python 3, (if `java` is missing) a JDK, The
# Unarchiver (`unar`: lsar and unar) and Apache Commons Compress (`libcommons-compress-java`).
# Idempotent: does nothing but print versions when everything is present. Runs apt without
# prompts; uses sudo when not root.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi

have() { command -v "$1" >/dev/null 2>&1; }

# 7-Zip: Debian bookworm ships current 7-Zip as package `7zip` (binary `7zz`) and the old p7zip
# fork as `p7zip-full` (binary `7z`). Older Ubuntu releases have only p7zip-full. The harness
# uses `7zz` when present, else `7z`. Install whichever packages the archive offers.
pkgs=()
have unzip || pkgs+=(unzip)
have zip || pkgs+=(zip)
have bsdtar || pkgs+=(libarchive-tools)
have python3 || pkgs+=(python3)
have java || pkgs+=(default-jdk-headless)
# javac compiles the Commons Compress checker (test/interop/src/CommonsCheck.java).
have javac || pkgs+=(default-jdk-headless)
have lsar || pkgs+=(unar)
[ -f /usr/share/java/commons-compress.jar ] || pkgs+=(libcommons-compress-java)
seven=()
have 7zz || seven+=(7zip)
have 7z || seven+=(p7zip-full)

if [ ${#pkgs[@]} -gt 0 ] || [ ${#seven[@]} -gt 0 ]; then
  # `apt-get update` only when the package lists are missing or a wanted package is unknown.
  need_update=0
  if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' || true)" ]; then need_update=1; fi
  for p in "${pkgs[@]}"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then need_update=1; fi
  done
  # 7-Zip packages are best effort when one binary already exists (`7zip` is unknown to older
  # releases; do not refresh the lists on every run for it).
  if ! have 7zz && ! have 7z && ! apt-cache show p7zip-full >/dev/null 2>&1; then need_update=1; fi
  if [ "$need_update" -eq 1 ]; then $SUDO apt-get update -qq </dev/null; fi

  # Keep only the 7-Zip packages this release knows (7zip is missing before bookworm/jammy).
  avail=()
  for p in "${seven[@]}"; do
    if apt-cache show "$p" >/dev/null 2>&1; then avail+=("$p"); fi
  done
  if [ $(( ${#pkgs[@]} + ${#avail[@]} )) -gt 0 ]; then
    # Package lists that exist but are stale name versions the mirror no longer has ("held broken
    # packages", 404s): refresh them once and retry rather than fail the whole setup.
    if ! $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" "${avail[@]}" </dev/null; then
      if [ "$need_update" -eq 1 ]; then exit 1; fi
      echo "install-readers: apt-get install failed; refreshing package lists and retrying" >&2
      $SUDO apt-get update -qq </dev/null
      $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" "${avail[@]}" </dev/null
    fi
  fi
fi

if ! have 7zz && ! have 7z; then
  echo "install-readers: no 7-Zip binary (7zz or 7z) after install" >&2
  exit 1
fi

echo "Readers:"
echo "  unzip:  $(unzip -v | head -n1)"
if have 7zz; then echo "  7zz:    $(7zz i </dev/null | grep -m1 '7-Zip')"; fi
if have 7z; then echo "  7z:     $(7z i </dev/null | grep -m1 -E '7-Zip|p7zip')"; fi
echo "  bsdtar: $(bsdtar --version)"
echo "  python: $(python3 --version 2>&1)"
echo "  java:   $(java -version 2>&1 | head -n1)"
echo "  unar:   $(unar -v 2>&1 | head -n1)"
echo "  commons-compress: $(unzip -p /usr/share/java/commons-compress.jar META-INF/MANIFEST.MF | sed -n 's/^Implementation-Version: //p' | tr -d '\r')"
