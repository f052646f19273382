#!/usr/bin/env python3
"""Fails when a target of the package depends on, or imports, a target at its own level or above.

Reads `swift package describe --type json` (the targets SwiftPM builds and their declared
dependencies) and every `import` in the targets' sources. The levels are the module stack of
docs/ARCHITECTURE.md; a target missing from them fails too, so a new one must be placed.
Also fails when the `strata` command, or a library product a user builds it with, depends even
indirectly on Open MPI (COpenMPI): those build on machines without it.
"""
import json
import os
import re
import subprocess
import sys

LEVELS = [
    ["CStrata", "CStrataIO", "COpenMPI"],
    ["CStrataMPI"],
    ["StrataCore"],
    ["StrataNN"],
    ["StrataData"],
    ["StrataClassic", "StrataInspect", "StrataDistributed", "StrataONNX"],
    ["Strata"],
    ["StrataFaces"],
    ["StrataCommands"],
    ["strata", "StrataFuzz", "StrataMPICheck", "StrataMPICommand"],
    ["StrataTests"],
]
LEVEL = {name: i for i, names in enumerate(LEVELS) for name in names}
# Targets that must build without Open MPI, and the system library that needs it.
WITHOUT_MPI = ["strata", "StrataCommands", "Strata", "StrataFaces", "StrataFuzz"]
MPI_TARGET = "COpenMPI"


def reaches(targets, start, goal):
    """Whether `start` depends on `goal` through target dependencies."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name in seen or name not in targets:
            continue
        seen.add(name)
        todo.extend(targets[name].get("target_dependencies", []))
    return False


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    desc = json.loads(subprocess.run(["swift", "package", "describe", "--type", "json"], cwd=root,
                                     check=True, capture_output=True, text=True).stdout)
    problems = []
    targets = {t["name"]: t for t in desc["targets"]}
    for name, t in targets.items():
        if name not in LEVEL:
            problems.append(f"{name}: not placed in the module stack (Tools/check_layering.py LEVELS)")
            continue
        deps = t.get("target_dependencies", [])
        for d in deps:
            if d in LEVEL and LEVEL[d] >= LEVEL[name]:
                problems.append(f"{name} (level {LEVEL[name]}) depends on {d} (level {LEVEL[d]})")
        path = os.path.join(root, t["path"])
        for dirpath, _, files in os.walk(path):
            for f in files:
                if not f.endswith(".swift"):
                    continue
                src = os.path.join(dirpath, f)
                for n, line in enumerate(open(src, encoding="utf-8"), 1):
                    m = re.match(r"\s*(?:@\w+\s+)*import\s+(?:\w+\s+)?(\w+)", line)
                    if m and m.group(1) in LEVEL and m.group(1) != name and LEVEL[m.group(1)] >= LEVEL[name]:
                        problems.append(f"{os.path.relpath(src, root)}:{n}: {name} imports {m.group(1)}, which is not below it")
    for name in WITHOUT_MPI:
        if name in targets and reaches(targets, name, MPI_TARGET):
            problems.append(f"{name} depends on {MPI_TARGET}: it must build without Open MPI (Package.swift)")
    for p in problems:
        print(p, file=sys.stderr)
    checked = len(targets)
    print(f"layering: {checked} targets checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
