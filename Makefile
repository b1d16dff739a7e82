# Thin wrapper over CMake presets. `make run` and `make test` install what is missing first.
.PHONY: all deps build asan fuzz test run xtensa bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake --preset default >/dev/null
	@cmake --build --preset default

asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

xtensa: deps
	@scripts/xtensa-size.sh

test: build asan xtensa
	@scripts/deps.sh --web
	@scripts/deps.sh --bench
	@ctest --preset asan

run: build
	@mkdir -p var
	exec build/bin/fotad --data ./var

bench: build
	@scripts/deps.sh --bench
	@bench/run-all.sh

clean:
	rm -rf build
