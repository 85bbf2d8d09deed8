# Sourced by the project's scripts: the GPU environment of this machine and of CI.
# Both software adapters in one process: Mesa lavapipe (f16, subgroups of 8) and Chromium's
# SwiftShader (no f16: the adapter the browser gets). Set VK_ICD_FILENAMES yourself to override.
# The lavapipe is Mesa 25's, which scripts/setup.sh unpacks into the cache, else the system's
# (Debian 12: Mesa 22.3); WISP_SYSTEM_LVP_ICD names the system's for the run that keeps it correct.
export WISP_CACHE="${WISP_CACHE:-$HOME/.cache/wisp}"
export WISP_SYSTEM_LVP_ICD=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
LVP_ICD="$WISP_CACHE/mesa25/lvp25.json"
if [ ! -f "$LVP_ICD" ]; then
  LVP_ICD="$WISP_SYSTEM_LVP_ICD"
  # Said once per shell, and only where the system's Mesa is older than 25 (Debian 12).
  if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -z "${WISP_MESA_NOTICE:-}" ] &&
    dpkg --compare-versions "$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo 25)" lt 25 2>/dev/null; then
    echo "wisp: Mesa 25's lavapipe is not in $WISP_CACHE/mesa25 (scripts/setup.sh fetches it); using the system's older lavapipe" >&2
    export WISP_MESA_NOTICE=1
  fi
fi
SWS_ICD=/usr/lib/chromium/vk_swiftshader_icd.json
if [ -z "${VK_ICD_FILENAMES:-}" ]; then
  icds=""
  for f in "$LVP_ICD" "$SWS_ICD"; do [ -f "$f" ] && icds="${icds:+$icds:}$f"; done
  [ -n "$icds" ] && export VK_ICD_FILENAMES="$icds"
fi
# Vulkan loaders complain loudly without it.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
  export XDG_RUNTIME_DIR="$(mktemp -d)"
fi
# The project's Python (a venv that scripts/setup.sh makes; system python3 before it exists).
if [ -x "$WISP_CACHE/venv/bin/python" ]; then
  export WISP_PY="$WISP_CACHE/venv/bin/python"
else
  export WISP_PY="${WISP_PY:-python3}"
fi
