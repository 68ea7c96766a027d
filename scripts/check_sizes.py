#!/usr/bin/env python3
"""Fails when a function in service/, rules/ or clients/ is longer than 60 lines or a file longer
than 400, except those listed in scripts/size_exceptions.txt with a reason.

Reads clang-formatted code (the CI checks the format first): a function starts at a line that ends
with "{" after a ")" (its signature, which may span lines above) and ends at the first line with
the same indentation that is "}". Lambdas and local classes count toward the function around them.
Usage: check_sizes.py [--list] (--list prints every function over 40 lines, longest first).
"""
import pathlib
import re
import sys

TOP = pathlib.Path(__file__).resolve().parent.parent
DIRS = ["service", "rules", "clients"]
MAX_FUNCTION = 60
MAX_FILE = 400
NOT_A_FUNCTION = re.compile(
    r"^(class|struct|union|enum|namespace|extern|if|else|for|while|switch|do|try|catch|case|return|"
    r"template|using|typedef)\b")


def functions(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if stripped.endswith("{") and not NOT_A_FUNCTION.match(stripped) and not stripped.startswith("}"):
            # The signature: this line and the continuation lines above it (deeper or same indent,
            # not ending a statement or a block).
            start = i
            while start > 0:
                above = lines[start - 1].rstrip()
                if not above or above.endswith((";", "{", "}", ":")) or above.lstrip().startswith(("//", "#")):
                    break
                start -= 1
            signature = " ".join(l.strip() for l in lines[start:i + 1])
            if ")" in signature and "=" not in signature.split("(")[0]:
                end = i + 1
                indent = len(lines[start]) - len(lines[start].lstrip(" "))
                closing = " " * indent + "}"
                while end < len(lines) and not (lines[end].rstrip() == closing or
                                                lines[end].startswith(closing + "  //")):
                    end += 1
                if end < len(lines):
                    name = signature.split("(")[0].split()[-1] if signature.split("(")[0].split() else "?"
                    out.append((end - start + 1, name, start + 1))
                    i = end + 1
                    continue
        i += 1
    return lines, out


def main():
    listing = "--list" in sys.argv
    exceptions = {}
    exc_file = TOP / "scripts" / "size_exceptions.txt"
    if exc_file.exists():
        for raw in exc_file.read_text(encoding="utf-8").splitlines():
            if raw.strip() and not raw.startswith("#"):
                key, _, reason = raw.partition(" ")
                if not reason.strip():
                    sys.exit(f"{exc_file}: '{key}' has no reason")
                exceptions[key] = reason.strip()
    failures = []
    found = []
    used = set()
    for d in DIRS:
        for path in sorted((TOP / d).rglob("*")):
            if path.suffix not in (".cc", ".h") or "build" in path.parts:
                continue
            rel = path.relative_to(TOP).as_posix()
            lines, funcs = functions(path)
            if len(lines) - 1 > MAX_FILE:
                if rel in exceptions:
                    used.add(rel)
                else:
                    failures.append(f"{rel}: {len(lines) - 1} lines (at most {MAX_FILE})")
            for n, name, at in funcs:
                found.append((n, f"{rel}:{at} {name}"))
                if n > MAX_FUNCTION:
                    key = f"{rel}:{name}"
                    if key in exceptions:
                        used.add(key)
                    else:
                        failures.append(f"{rel}:{at}: {name} is {n} lines (at most {MAX_FUNCTION})")
    if listing:
        for n, where in sorted(found, reverse=True):
            if n > 40:
                print(f"{n:4d} {where}")
    for key in sorted(set(exceptions) - used):
        failures.append(f"scripts/size_exceptions.txt: '{key}' is no longer too long: remove it")
    for f in failures:
        print(f, file=sys.stderr)
    if failures:
        print(f"check_sizes: {len(failures)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_sizes: {len(found)} functions, none over {MAX_FUNCTION} lines and no file over "
          f"{MAX_FILE} lines outside the {len(exceptions)} listed exceptions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
