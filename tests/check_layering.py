#!/usr/bin/env python3
"""Checks the core's module layering (core/README.md's table) and that no workbench source outside
the engine bridge includes a LibTorch-dependent core header. Exit 1 with every violation listed."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)
BRIDGE = {"engine.cpp", "training_worker.cpp"}
TORCH = ("torch/", "ATen/", "c10/")


def table():
    text = open(os.path.join(ROOT, "core", "README.md")).read()
    block = re.search(r"```layering\n(.*?)```", text, re.S).group(1)
    allowed = {}
    for line in block.strip().splitlines():
        mod, rest = line.split(":", 1)
        allowed[mod.strip()] = set() if "(" in rest else set(rest.split())
    return allowed


def module_of(path):
    for base in ("core/include/msconv/", "core/src/"):
        if path.startswith(base):
            rel = path[len(base):]
            return rel.split("/")[0] if "/" in rel and not rel.startswith("util/") else "base"
    return None


def core_files():
    for base in ("core/include/msconv", "core/src"):
        for d, _, files in os.walk(os.path.join(ROOT, base)):
            for f in files:
                if f.endswith((".h", ".cpp", ".cu")):
                    yield os.path.relpath(os.path.join(d, f), ROOT)


def includes(path):
    return INCLUDE.findall(open(os.path.join(ROOT, path), errors="replace").read())


def resolve(inc):
    for base in ("core/include/", "core/src/"):
        if os.path.exists(os.path.join(ROOT, base, inc)):
            return base + inc
    return None


def main():
    errors = []
    allowed = table()
    # The table itself has no cycle.
    state = {}

    def visit(m, trail):
        if state.get(m) == 1:
            errors.append("core/README.md: the layering has a cycle: " + " -> ".join(trail + [m]))
            return
        if state.get(m) == 2:
            return
        state[m] = 1
        for d in allowed.get(m, ()):
            visit(d, trail + [m])
        state[m] = 2

    for m in allowed:
        visit(m, [])
    # Every include between core modules follows the table.
    for f in core_files():
        mod = module_of(f)
        if mod not in allowed:
            errors.append(f"{f}: module '{mod}' is not in core/README.md's table")
            continue
        for inc in includes(f):
            m = re.match(r"msconv/([a-z_]+)/", inc)
            dep = m.group(1) if m else ("base" if re.match(r"(msconv/[a-z_]+\.h|util/)", inc) else None)
            if dep in (None, mod) or dep == "viz" and "viz" in allowed[mod]:
                continue
            if dep != "base" and dep not in allowed[mod]:
                errors.append(f"{f}: includes {inc}, but {mod} may use only {sorted(allowed[mod])}")
    # LibTorch-dependent core headers, transitively.
    torchy = {}

    def uses_torch(path, seen=()):
        if path in torchy:
            return torchy[path]
        torchy[path] = False
        result = False
        for inc in includes(path):
            if inc.startswith(TORCH):
                result = True
            else:
                r = resolve(inc)
                if r and r not in seen and uses_torch(r, seen + (path,)):
                    result = True
        torchy[path] = result
        return result

    for d, _, files in os.walk(os.path.join(ROOT, "ui")):
        for f in files:
            if not f.endswith((".h", ".cpp")) or f in BRIDGE:
                continue
            path = os.path.relpath(os.path.join(d, f), ROOT)
            for inc in includes(path):
                r = resolve(inc)
                if inc.startswith(TORCH) or (r and uses_torch(r)):
                    errors.append(f"{path}: includes {inc}, which pulls in LibTorch "
                                  "(only the engine bridge may)")
    for e in errors:
        print(e)
    print(f"layering: {len(allowed)} modules, {len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
