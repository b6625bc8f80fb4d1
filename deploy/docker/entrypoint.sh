#!/usr/bin/env bash
# The image's one entrypoint (under tini). Decides from the environment what this container is:
#   FLUID_RUNTIME_TYPE=thin                 → Fluid ThinRuntime FUSE pod:  strata fluid thin
#   FLUID_RUNTIME_COMPONENT_TYPE is set     → Fluid CacheRuntime pod:      strata fluid cache-runtime
#   Fluid's config.json is mounted          → Fluid ThinRuntime FUSE pod:  strata fluid thin
#   anything else                           → strata <args>   (e.g. `docker run strata master`)
# The component type is checked before the file because the legacy CacheRuntime also mounts a
# config.json. Arguments given in a Fluid pod are passed on (e.g. --debug).
set -euo pipefail

fluid_dir="${STRATA_FLUID_DIR:-/etc/fluid}"

if [[ "${FLUID_RUNTIME_TYPE:-}" == "thin" ]]; then
  exec strata fluid thin "$@"
fi
if [[ -n "${FLUID_RUNTIME_COMPONENT_TYPE:-}" ]]; then
  exec strata fluid cache-runtime "$@"
fi
for config in "$fluid_dir/config/config.json" "$fluid_dir/config.json"; do
  if [[ -f "$config" ]]; then
    exec strata fluid thin --config "$config" "$@"
  fi
done
exec strata "$@"
