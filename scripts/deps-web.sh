#!/usr/bin/env bash
# Installs the console's npm packages with `npm ci`, each directory only when
# its node_modules is missing or its lock file changed since the last install.
# Quiet and idempotent.
#   web/        uPlot, the console's charts, embedded into fotad at build time
#               (web/CMakeLists.txt); every build needs it
#   tests/e2e/  playwright-core, the browser tests' driver (the browser itself is
#               Debian's chromium, scripts/deps.sh --web, never a download)
#   deps-web.sh             both
#   deps-web.sh --console   web/ only (what a build needs)
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
dirs=("web" "tests/e2e")
[ "${1:-}" = --console ] && dirs=("web")

if ! command -v npm >/dev/null 2>&1; then
  echo "deps-web: npm not found; install Debian's npm (scripts/deps.sh)" >&2
  exit 1
fi

for d in "${dirs[@]}"; do
  dir="$top/$d"
  stamp="$dir/node_modules/.fota-lock.sha256"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  have="$(cat "$stamp" 2>/dev/null || true)"
  [ "$want" = "$have" ] && continue
  echo "deps-web: npm ci in $d"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" >"$stamp"
done
