#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Node 20: installs what the tests
# need when missing (GDAL as the pixel reference and HTTP client, Chromium for the map
# pages, Redis and nginx for the cache tiers, which the tests start on ports of their own,
# libdeflate for the build), builds (the kernels, the addon, the type check), lints, and
# runs every test file with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v gdalwarp >/dev/null || need+=(gdal-bin)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null || need+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
# The build's inflate addon: libdeflate's headers and static library, and a C toolchain.
[ -f /usr/include/libdeflate.h ] || need+=(libdeflate-dev)
command -v make >/dev/null && command -v gcc >/dev/null || need+=(make gcc)
if [ ${#need[@]} -gt 0 ]; then
  echo "test: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Tests skip their GDAL and browser parts only where these are missing: here they must not be.
export PATH="$PATH:/usr/sbin"
for tool in gdalwarp gdal_translate gdaldem gdalinfo /usr/bin/chromium redis-server nginx; do
  command -v "$tool" >/dev/null || { echo "test: $tool is missing after installing" >&2; exit 1; }
done

[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
npm run --silent build
npm run --silent lint

# One file at a time keeps the two cores for the servers the integration tests start.
exec node --test --test-concurrency=1 --test-reporter=spec "dist/test/"*.test.js
