#!/usr/bin/env bash
# Cross-compiles the portable code (common/ and the device library) for the
# real chip with xtensa-lx106-elf-gcc and picolibc, -Os -Wall -Werror, and
# prints its text/data/bss. Fails if any file does not compile.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/xtensa
rm -rf "$out"; mkdir -p "$out"
# jsmn is header-only and lives in the host's /usr/include: expose just that header
mkdir -p "$out/inc" && ln -s /usr/include/jsmn.h "$out/inc/jsmn.h"
CC=xtensa-lx106-elf-gcc
CFLAGS=(--specs=/usr/lib/xtensa-lx106-elf/picolibc.specs -Os -std=c99 -Wall -Wextra -Werror -Wno-unused-parameter
        -mlongcalls -ffunction-sections -fdata-sections
        -I"$top/common" -I"$top/device/include" -I"$top/device/hal/esp8266" -I"$out/inc")
srcs=()
for d in common device/src device/hal/esp8266; do
  [ -d "$top/$d" ] || continue
  while IFS= read -r f; do srcs+=("$f"); done < <(find "$top/$d" -maxdepth 1 -name '*.c' | sort)
done
[ ${#srcs[@]} -gt 0 ] || { echo "xtensa: no portable sources"; exit 1; }
objs=()
for f in "${srcs[@]}"; do
  o=$out/$(echo "${f#$top/}" | tr / _).o
  $CC "${CFLAGS[@]}" -c "$f" -o "$o"
  objs+=("$o")
done
xtensa-lx106-elf-ar rcs "$out/libfota-portable.a" "${objs[@]}"
echo "xtensa-lx106-elf (-Os, picolibc): portable code size"
xtensa-lx106-elf-size -t "$out/libfota-portable.a" | awk 'NR==1 || /TOTALS/ || /\.o/ {print}' | sed 's|'"$out"'/||'
# RAM a device needs: the library keeps all its state in caller storage, so the
# sizes of its state structs on the chip are the figure (no heap after init).
if [ -f "$top/device/include/fotadev.h" ]; then
  cat > "$out/ramprobe.c" <<'C'
#include "fotadev.h"
#include "fotadev_esp8266.h"
char fota_ram_agent[sizeof(struct fotadev_agent)];
char fota_ram_esp8266_port[sizeof(struct fotadev_esp8266)];
char fota_ram_image_stream[sizeof(struct fota_fwimg_stream)];
C
  $CC "${CFLAGS[@]}" -fno-common -c "$out/ramprobe.c" -o "$out/ramprobe.o"
  line="RAM per device (bytes, xtensa):"
  while read -r _ size _ name; do
    line="$line ${name#fota_ram_}=$((16#$size))"
  done < <(xtensa-lx106-elf-nm -S "$out/ramprobe.o" | grep fota_ram_)
  echo "$line"
fi
