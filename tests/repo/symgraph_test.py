#!/usr/bin/env python3
"""Checks scripts/symgraph on small trees compiled here: it must find a circle
between two concepts (exit 1), accept a one-way graph, a circle inside one
concept and test files (exit 0), and fail when the tree is not built (exit 2)."""

import json
import os
import subprocess
import sys
import tempfile

SRC = os.environ.get("FOTA_SRC_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
SYMGRAPH = os.path.join(SRC, "scripts", "symgraph")
CC = os.environ.get("CC", "cc")


def tree(top, files, build=True):
    """Writes the given sources, their objects and compile_commands.json into top."""
    entries = []
    for rel, text in files.items():
        path = os.path.join(top, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        obj = rel + ".o"
        if build:
            subprocess.run([CC, "-c", path, "-o", os.path.join(top, obj)], check=True)
        entries.append({"directory": top, "file": path,
                        "command": "%s -o %s -c %s" % (CC, obj, path)})
    with open(os.path.join(top, "compile_commands.json"), "w") as f:
        json.dump(entries, f)


def run(top):
    p = subprocess.run([sys.executable, SYMGRAPH, top], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


failures = []


def expect(name, files, want_rc, want_text=(), build=True):
    with tempfile.TemporaryDirectory(prefix="fota-symgraph-") as top:
        tree(top, files, build)
        rc, out = run(top)
    missing = [t for t in want_text if t not in out]
    if rc != want_rc or missing:
        failures.append("%s: rc %d (want %d), missing %s\n%s" % (name, rc, want_rc, missing, out))


A_USES_B = "int b_fn(void); int a_fn(void); int a_fn(void) { return b_fn(); }\n"
B_USES_A = "int a_fn(void); int b_fn(void); int b_fn(void) { return a_fn() + 1; }\n"
B_ALONE = "int b_fn(void); int b_fn(void) { return 1; }\n"

expect("circle between directories", {"x/a.c": A_USES_B, "y/b.c": B_USES_A}, 1,
       ["circle 1: 2 files, 2 concepts: x/a, y/b", "* x/a.c -> y/b.c: b_fn",
        "* y/b.c -> x/a.c: a_fn"])
expect("one-way edge", {"x/a.c": A_USES_B, "y/b.c": B_ALONE}, 0,
       ["2 files, 1 edges", "no circle between files of different concepts"])
expect("circle inside one concept", {"x/store_a.c": A_USES_B, "x/store_b.c": B_USES_A}, 0,
       ["circle inside one concept (allowed): x/store"])
expect("circle between prefixes of one directory",
       {"x/rpc.c": A_USES_B, "x/devchan.c": B_USES_A}, 1, ["x/devchan, x/rpc"])
expect("program files are their own concept",
       {"x/fota_sim_main.c": "int fotasim_g; int b_fn(void);\nint main(void) { return b_fn(); }\n",
        "x/fota_sim_dev.c": "extern int fotasim_g; int b_fn(void);\n"
                            "int b_fn(void) { return fotasim_g; }\n"},
       1, ["x/fota_sim_main (program)", "fotasim_g"])
expect("test files are left out", {"x/a.c": A_USES_B, "tests/b.c": B_USES_A}, 0,
       ["1 files, 0 edges"])
expect("unbuilt tree", {"x/a.c": A_USES_B}, 2, ["object files missing"], build=False)

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("symgraph_test: 7 cases passed")
