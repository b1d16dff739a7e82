# Thin wrapper over CMake presets. `make run` and `make test` install what is missing first.
.PHONY: all deps build asan tsan fuzz fuzz-run test run xtensa bench deb install clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake --preset default >/dev/null
	@cmake --build --preset default

asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan

# ThreadSanitizer with clang 16: Debian 12's clang 14 TSan crashes in its own
# fd race reporting (a CHECK in AddLocation).
tsan:
	@scripts/deps.sh --tsan
	@cmake --preset tsan >/dev/null
	@cmake --build --preset tsan

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

# The campaign: every target of tests/fuzz for FUZZ_RUNS executions (or FUZZ_TIME
# seconds) each, FUZZ_JOBS at a time; new inputs in build/fuzz/work, one row per
# target in build/fuzz/results (scripts/fuzz-run.sh, docs/fuzzing.md).
FUZZ_RUNS ?= 10000000
fuzz-run: deps
	@FUZZ_RUNS=$(FUZZ_RUNS) scripts/fuzz-run.sh

xtensa: deps
	@scripts/xtensa-size.sh

# Everything a test needs (browser, nginx, wrk, debhelper, promtool) is installed before
# anything is configured, so CMake finds it; then the two sanitizer trees, the xtensa check,
# and every test under ASan+UBSan, then again under ThreadSanitizer each test whose programs
# start threads and whose subject is fotad (the tsan test preset leaves out the labels
# nothreads, e2e, abort_paths and clients: tests/unit/CMakeLists.txt, tests/e2e/CMakeLists.txt,
# tests/integration/CMakeLists.txt). Three tests at a time: with two, a third of the 2 cores'
# time is idle while tests wait on devices' timers and sockets. The programs' gcc build, with
# Debian's flags, is packaging.deb's (`make build` is the default tree: gcc -O2 for everything,
# tests and benchmarks too). The TSan tree and the xtensa check build at nice 19 while the
# ASan tests run: those tests leave part of the 2 cores idle (waiting on devices' timers and
# sockets), which the compiler takes without slowing them; its output is in
# build/test-tsan-build.log, shown if it fails.
test:
	@scripts/deps.sh --test --web --bench --tsan --deb
	@$(MAKE) --no-print-directory asan
	@mkdir -p build; \
	 nice -n 19 $(MAKE) --no-print-directory tsan xtensa >build/test-tsan-build.log 2>&1 & \
	 built=$$!; \
	 ctest --preset asan; asan=$$?; \
	 if ! wait $$built; then cat build/test-tsan-build.log; exit 1; fi; \
	 if [ $$asan -ne 0 ]; then exit $$asan; fi; \
	 ctest --preset tsan

# Espressif's ports (80 for HTTP) need root; anyone else gets HTTP on 8080.
# Only the programs an operator uses (fotad, fotactl, fota-sim), not the tests: the first
# `make run` on a new machine builds about a third of the tree.
run: deps
	@cmake --preset default >/dev/null
	@cmake --build --preset default --target fotad fotactl fota-sim
	@mkdir -p var
	@if [ "$$(id -u)" -eq 0 ]; then exec build/bin/fotad --data ./var; \
	 else echo "make run: not root, so HTTP listens on port 8080 instead of 80"; \
	      exec build/bin/fotad --data ./var --http-port 8080; fi

# The Debian package (packaging/debian, debhelper) in build/deb/: fotad, fotactl, fota-sim,
# their man pages, the systemd unit, /etc/fota/fotad.conf and the system user fota.
deb:
	@scripts/deps.sh --deb
	@packaging/deb.sh

# The same files under PREFIX (default /usr/local; /etc when PREFIX is /usr), below DESTDIR
# when given: `make install PREFIX=/usr DESTDIR=/tmp/stage`.
PREFIX ?= /usr/local
install: deps
	@cmake --preset default -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build --preset default --target fotad fotactl fota-sim
	@DESTDIR="$(DESTDIR)" cmake --install build
	@if [ -z "$(DESTDIR)" ]; then echo "make install: then create the user fota" \
	   "(systemd-sysusers) and start the service: systemctl daemon-reload &&" \
	   "systemctl enable --now fotad"; fi

bench: build
	@scripts/deps.sh --bench
	@bench/run-all.sh

clean:
	rm -rf build
