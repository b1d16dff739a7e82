#!/usr/bin/env bash
# Installs what fota needs to build, test and benchmark, from Debian's
# packages (and, for the console's charts and browser tests, from npm). Idempotent and
# quiet when nothing is missing: it only asks apt when a package is absent.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  python3 curl openssl groff-base
  libevent-dev libssl-dev libjansson-dev libsqlite3-dev sqlite3 libpq-dev
  libinih-dev libcurl4-openssl-dev libmbedtls-dev libjsmn-dev libcmocka-dev zlib1g-dev
  gcc-xtensa-lx106 picolibc-xtensa-lx106-elf
  libmosquitto-dev mosquitto mosquitto-clients
  postgresql   # the tests start a server of their own (tests/pg/pg_server.sh)
  haproxy      # the scale-out tests start one in front of several fotad (etc/haproxy.cfg.example)
  nodejs
)
# Extra packages a later step asks for: deps.sh [--test] [--bench] [--web] [--tsan] [--fmt] [--deb]
for a in "$@"; do
  case "$a" in
    # make deb (debhelper) and its tests: the unit checked by systemd-analyze, the
    # maintainer scripts by shellcheck, the man pages found by man, the package installed
    # into a debootstrap root.
    --deb)   pkgs+=(debhelper lintian shellcheck systemd debootstrap man-db) ;;
    --test)  pkgs+=(prometheus) ;;                     # promtool checks GET /metrics
    --bench) pkgs+=(nginx-light wrk strace) ;;
    --tsan)  pkgs+=(clang-16 libclang-rt-16-dev) ;;   # clang 14's TSan crashes (Makefile)
    --fmt)   pkgs+=(clang-format-16) ;;                 # .clang-format needs 16 (docs/style.md)
    --web)   pkgs+=(chromium fonts-wqy-microhei) ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm: the console's charts (uPlot, embedded into fotad: every build) and, with
# --web, the browser tests' playwright-core driving Debian's chromium. Debian's
# nodejs comes without npm (a separate package); a Node.js that bundles npm (as
# some machine images have) needs nothing more.
if ! command -v npm >/dev/null 2>&1; then
  echo "deps: installing npm"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
web=--console
for a in "$@"; do
  [ "$a" = --web ] && web=
done
"$(dirname "$0")/deps-web.sh" ${web:+"$web"}
