#!/usr/bin/env bash
# Installs the console's browser-test packages (playwright-core, pinned by
# tests/e2e/package-lock.json) with `npm ci`, only when node_modules is missing
# or the lock file changed since the last install. Quiet and idempotent.
# The browser itself is Debian's chromium (scripts/deps.sh --web), never a download.
set -euo pipefail

dir="$(cd "$(dirname "$0")/../tests/e2e" && pwd)"
stamp="$dir/node_modules/.fota-lock.sha256"

if ! command -v npm >/dev/null 2>&1; then
  echo "deps-web: npm not found; install Debian's npm (apt-get install npm)" >&2
  exit 1
fi

want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ -d "$dir/node_modules/playwright-core" ] && [ "$want" = "$have" ]; then
  exit 0
fi

echo "deps-web: npm ci in tests/e2e"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "$want" >"$stamp"
