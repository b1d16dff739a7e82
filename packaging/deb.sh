#!/usr/bin/env bash
# deb.sh - builds fota's Debian package from this tree (`make deb`): copies the files git
# knows, as they are in the working tree, to OUT/fota-VERSION with packaging/debian as its
# debian/, and runs dpkg-buildpackage there. The .deb lands in OUT (default build/deb).
#
#   packaging/deb.sh [OUT]
#
# Needs the build dependencies of packaging/debian/control (scripts/deps.sh --deb).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$top/build/deb}" && cd "${1:-$top/build/deb}" && pwd)
version=$(sed -n 's/^project(fota VERSION \([0-9.]*\) .*/\1/p' "$top/CMakeLists.txt")
changelog=$(sed -n '1s/^fota (\([^)]*\)).*/\1/p' "$top/packaging/debian/changelog")
[ -n "$version" ] || { echo "deb: no project version in CMakeLists.txt" >&2; exit 1; }
[ "$version" = "$changelog" ] || {
  echo "deb: packaging/debian/changelog is at $changelog, CMakeLists.txt at $version:" \
       "add a changelog entry (dch -v $version)" >&2
  exit 1
}

src=$out/fota-$version
rm -rf "$src" "$out"/fota_* "$out"/fota-dbgsym_*
mkdir -p "$src"
# Tracked and new files, without what .gitignore names and without deleted ones.
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
   while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
   tar --null -T - -cf -) | tar -C "$src" -xf -
rm -rf "$src/debian"
cp -r "$top/packaging/debian" "$src/debian"
# The console's uPlot from npm (web/node_modules, ignored by git; scripts/deps.sh installs
# it): the build embeds it, and the package build reaches no registry.
[ -f "$top/web/node_modules/uplot/dist/uPlot.iife.min.js" ] || "$top/scripts/deps-web.sh" --console
mkdir -p "$src/web/node_modules"
cp -r "$top/web/node_modules/uplot" "$src/web/node_modules/uplot"

cd "$src"
# Every core, unless DEB_BUILD_OPTIONS says how many (parallel=N: the test suite's one slot).
opts=(-b -us -uc)
case " ${DEB_BUILD_OPTIONS:-} " in *" parallel="*) ;; *) opts+=(-jauto) ;; esac
dpkg-buildpackage "${opts[@]}"
echo "deb: $(ls "$out"/fota_"$version"_*.deb)"
