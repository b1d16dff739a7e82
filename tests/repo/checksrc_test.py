#!/usr/bin/env python3
"""Checks scripts/checksrc on small trees written here: every check must fire on
its violation and stay quiet on the lawful spelling beside it, the allowlist must
pass up to its count and fail beyond it, and the prefix check must read nm."""

import json
import os
import subprocess
import sys
import tempfile

SRC = os.environ.get("FOTA_SRC_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
CHECKSRC = os.path.join(SRC, "scripts", "checksrc")
CC = os.environ.get("CC", "cc")

failures = []


def write(top, files):
    for rel, text in files.items():
        path = os.path.join(top, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def checksrc(top, *extra):
    p = subprocess.run([sys.executable, CHECKSRC, "--root", top] + list(extra),
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def expect(name, files, want_rc, want=(), unwanted=(), allow=None, symbols=False):
    with tempfile.TemporaryDirectory(prefix="fota-checksrc-") as top:
        write(top, files)
        args = ["--allow", os.path.join(top, "allow")]
        if allow is not None:
            write(top, {"allow": allow})
        if symbols:
            entries = []
            for rel in files:
                if rel.endswith(".c"):
                    obj = rel + ".o"
                    subprocess.run([CC, "-c", os.path.join(top, rel), "-o", os.path.join(top, obj)],
                                   check=True)
                    entries.append({"directory": top, "file": os.path.join(top, rel),
                                    "command": "cc -o %s -c %s" % (obj, rel)})
            write(top, {"compile_commands.json": json.dumps(entries)})
            args += ["--build-dir", top]
        else:
            args += ["--no-symbols"]
        rc, out = checksrc(top, *args)
    missing = [w for w in want if w not in out]
    present = [u for u in unwanted if u in out]
    if rc != want_rc or missing or present:
        failures.append("%s: rc %d (want %d), missing %s, unexpected %s\n%s"
                        % (name, rc, want_rc, missing, present, out))


HDR = "/* x.c - a test file. */\n"

expect("banned calls, not their safe forms", {
    "cli/x.c": HDR + "void f(char *d, const char *s, char *t) {\n"
                     "  strcpy(d, s);\n  snprintf(d, 4, \"%d\", 1);\n"
                     "  int n = atoi(s);\n  strtok_r(t, \",\", &t);\n  (void)n;\n"
                     "  /* strcat(d, s) in a comment */ const char *q = \"sprintf(\";\n}\n"
                     "static __thread int t1;\nstatic _Thread_local int t2;\n"},
    1, ["cli/x.c:3: banned: strcpy()", "cli/x.c:5: banned: atoi()", "cli/x.c:10: banned: __thread"],
    ["strtok", "strcat", "sprintf", "snprintf"])
expect("string copies", {
    "server/a/x.c": HDR + "static void copy_str(char *d, unsigned n, const char *s)\n{\n"
                          "  snprintf(d, n, \"%s\", s);\n  snprintf(d, n, \"%s:%d\", s, 1);\n}\n"},
    1, ["server/a/x.c:2: copy: private copy_str()", "server/a/x.c:4: copy: snprintf"],
    ["x.c:5:"])
expect("the daemon allocates through fota_x*", {
    "server/a/x.c": HDR + "void *f(void) {\n  reply(\"out of memory\");\n  return malloc(3);\n}\n",
    "server/util/xmalloc.c": HDR + "void *g(void) { return malloc(3); }\n",
    "server/a/y.c": HDR + "void *h(void) { return fota_xmalloc(3); }\n"},
    1, ["server/a/x.c:3: alloc: an out-of-memory", "server/a/x.c:4: alloc: malloc()"],
    ["xmalloc.c", "y.c"])
expect("the libraries allocate nothing", {
    "common/x.c": HDR + "void f(void *p) { free(p); }\n",
    "cli/x.c": HDR + "void f(void *p) { free(p); }\n"},
    1, ["common/x.c:2: noalloc: free()"], ["cli/x.c"])
expect("the daemon reads one clock", {
    "server/a/x.c": HDR + "long f(void) {\n"
                          "  return time(NULL) + s.time(1) + fota_clock_mono_ms();\n}\n",
    "server/util/clock.c": HDR + "long g(void) { return time(NULL); }\n"},
    1, ["server/a/x.c:3: clock: time()"], ["clock.c", "x.c:3: clock: fota_clock"])
expect("history in comments and docs, not in code", {
    "server/a/x.c": HDR + "/* see issue 9 */\nint was_set; /* (was fota_y) */\n",
    "docs/a.md": "# A\n\nMeasured in session 2.\n",
    "tests/t.py": '"""t.py - a test."""\n# formerly known as u.py\n',
    "bench/results/2024-01-01-abc.md": "session 1 raw run\n"},
    1, ["server/a/x.c:2: history: 'issue 9'", "server/a/x.c:3: history: '(was'",
        "docs/a.md:3: history: 'session 2'", "tests/t.py:2: history: 'formerly'"],
    ["bench/results", "was_set"])
expect("opening comments", {
    "common/x.c": "#include <stdio.h>\n",
    "common/y.c": "\n// y.c - fine.\n",
    "scripts/tool": "#!/bin/sh\necho hi\n",
    "scripts/ok.py": '#!/usr/bin/env python3\n"""ok.py - fine."""\n',
    "CMakeLists.txt": "project(x)\n"},
    1, ["common/x.c:1: opening", "scripts/tool:1: opening", "CMakeLists.txt:1: opening"],
    ["y.c", "ok.py"])
expect("explicit CMake lists", {
    "x/CMakeLists.txt": "# x\nfile(GLOB s *.c)\n# file(GLOB in a comment)\n"
                        "cmake_language(DEFER CALL f)\nif(EXISTS ${CMAKE_SOURCE_DIR}/y)\nendif()\n"
                        "if(EXISTS ${OUT})\nendif()\nadd_library(x a.c b.c)\n"},
    1, ["x/CMakeLists.txt:2: cmake: file(GLOB)", "x/CMakeLists.txt:4: cmake: cmake_language(DEFER)",
        "x/CMakeLists.txt:5: cmake: if(EXISTS)"], ["CMakeLists.txt:3:", "CMakeLists.txt:7:"])
expect("what .editorconfig asks", {
    "cli/x.c": HDR + "int a;  \n\tint b;\nint c;\r\nint d;",
    "Makefile": "# m\nall:\n\ttrue\n",
    "docs/a.md": "# A\n\ntext\n"},
    1, ["cli/x.c:2: space: trailing", "cli/x.c:3: space: a tab", "cli/x.c:4: space: a CR",
        "cli/x.c:5: space: no newline"], ["Makefile", "docs/a.md"])
expect("the allowlist takes up to its count", {
    "cli/x.c": HDR + "void f(char *d) { strcpy(d, \"a\"); strcpy(d, \"b\"); }\n"},
    0, ["2 on the allowlist"], allow="cli/x.c banned 2\n")
expect("the allowlist notes a count that can shrink", {
    "cli/x.c": HDR + "void f(char *d) { strcpy(d, \"a\"); }\n"},
    0, ["note: cli/x.c banned is down to 1 (allowlist 3)"], allow="cli/x.c banned 3\n")
expect("beyond the allowlist fails", {
    "cli/x.c": HDR + "void f(char *d) { strcpy(d, \"a\"); strcpy(d, \"b\"); }\n"},
    1, ["cli/x.c banned: 2 found, the allowlist takes 1"], allow="cli/x.c banned 1\n")
expect("symbol prefixes from nm", {
    "server/a/x.c": HDR + "int fota_ok(void); int fota_ok(void) { return 0; }\n"
                          "int bad_name(void); int bad_name(void) { return 1; }\n"
                          "static int hidden(void) { return 2; }\n"
                          "int fota_h(void); int fota_h(void) { return hidden(); }\n",
    "device/src/y.c": HDR + "int fota_z; int fotadev_ok;\n",
    "bench/p.c": HDR + "int helper; int main(void) { return 0; }\n"},
    1, ["server/a/x.c:0: prefix: exported bad_name", "device/src/y.c:0: prefix: exported fota_z",
        "bench/p.c:0: prefix: exported helper"],
    ["fota_ok", "hidden", "fotadev_ok", "exported main"], symbols=True)
# Without --no-symbols and without a build tree, the prefix check cannot run: a failure.
with tempfile.TemporaryDirectory(prefix="fota-checksrc-") as top:
    write(top, {"cli/x.c": HDR})
    rc, out = checksrc(top)
    if rc != 2 or "no build tree" not in out:
        failures.append("no build tree: rc %d\n%s" % (rc, out))

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("checksrc_test: all cases passed")
