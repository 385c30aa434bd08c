#!/usr/bin/env python3
"""Fails when a source file includes a project folder its folder may not depend on.

The allowed dependencies are the layout table of docs/layout.md (each folder may include the
folders listed, and what those may include). MPI and NCCL headers, and the comms backends that
wrap them, are reserved for launch/, bench/ and tests/: stages and the runtime see comms only
through its interfaces.
Usage: check_layering.py REPO_ROOT
"""
import pathlib
import re
import sys

DIRECT = {
    "base": [],
    "model": ["base"],
    "kernels": ["base"],
    "comms": ["base"],
    "stages": ["model", "kernels", "comms"],
    "runtime": ["stages", "comms"],
    "cluster": ["base"],
    "partition": ["model", "cluster"],
    "serving": ["runtime"],
}
EVERYTHING = ["launch", "bench", "tests"]
BACKEND_HEADERS = re.compile(r'^#include [<"](mpi\.h|nccl\.h|cuda_runtime[^">]*|comms/(mpi|nccl)/[^">]+)[">]')
INCLUDE = re.compile(r'^#include "([a-z_]+)/[^"]+"')


def closure(folder):
    seen, todo = set(), [folder]
    while todo:
        f = todo.pop()
        for d in DIRECT.get(f, []):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen | {folder}


def main(root):
    root = pathlib.Path(root)
    problems = []
    for folder in DIRECT:
        allowed = closure(folder)
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".h", ".cpp", ".cu", ".in"):
                continue
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                m = INCLUDE.match(line)
                if m and m.group(1) not in allowed and (root / m.group(1)).is_dir():
                    problems.append(f"{path.relative_to(root)}:{n}: {folder}/ may not include {m.group(1)}/ "
                                    f"(allowed: {', '.join(sorted(allowed))})")
                # comms/ itself holds the backends; everyone else below launch/ sees interfaces only.
                if folder != "comms" and BACKEND_HEADERS.match(line):
                    problems.append(f"{path.relative_to(root)}:{n}: {folder}/ may not include a transport "
                                    f"backend ({line.strip()}); use the comms interfaces")
    for p in problems:
        print(p)
    print(f"layering: {len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
