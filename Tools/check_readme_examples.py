#!/usr/bin/env python3
"""Fails when a Swift code block of README.md is not compiled by the Examples package.

Every ```swift block of README.md must be found in one file of Examples/Sources (which
`make examples-check` builds): its paragraphs (runs of lines between blank lines), in order,
each with its whitespace normalised (every run of spaces, tabs and newlines read as one
space). The paragraphs may be apart in the file, so an example can be wrapped in a function, its
`import` line can stay at the top, and a type it declares can stay at file scope; but no line of
the README's code can differ from the compiled one. A README example edited without its
compiled twin fails here; one that no longer compiles fails the Examples build.

Exempt: Package.swift manifest examples, which are not Swift sources of a target. A block is one
when its first line starts with `// Package.swift` (fences written ```swift-manifest or with
any other word after "swift" are not Swift blocks either).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
EXAMPLES = os.path.join(ROOT, "Examples", "Sources")
MANIFEST_MARK = "// Package.swift"


def swift_blocks(path):
    """(line number of the fence, code lines) for each ```swift block."""
    blocks, current, start = [], None, 0
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        stripped = line.strip()
        if current is None:
            if re.fullmatch(r"```\s*swift", stripped):
                current, start = [], n
        elif stripped.startswith("```"):
            blocks.append((start, current))
            current = None
        else:
            current.append(line.rstrip("\n"))
    if current is not None:
        sys.exit(f"{path}:{start}: unclosed ```swift block")
    return blocks


def normalise(text):
    return " ".join(text.split())


def paragraphs(lines):
    paras, cur = [], []
    for line in lines + [""]:
        if line.strip():
            cur.append(line)
        elif cur:
            paras.append(normalise("\n".join(cur)))
            cur = []
    return paras


def contains_in_order(haystack, needles):
    """True when every needle occurs in `haystack`, in order, on whitespace boundaries."""
    text, pos = " " + haystack + " ", 0
    for needle in needles:
        i = text.find(" " + needle + " ", pos)
        if i < 0:
            return False
        pos = i + len(needle) + 1
    return True


def main():
    sources = {}
    for dirpath, _, files in os.walk(EXAMPLES):
        for f in sorted(files):
            if f.endswith(".swift"):
                p = os.path.join(dirpath, f)
                sources[os.path.relpath(p, ROOT)] = normalise(open(p, encoding="utf-8").read())
    if not sources:
        print(f"no Swift sources under {os.path.relpath(EXAMPLES, ROOT)}", file=sys.stderr)
        return 1
    problems, checked, exempt = [], 0, 0
    for start, lines in swift_blocks(README):
        first = next((l.strip() for l in lines if l.strip()), "")
        if first.startswith(MANIFEST_MARK):
            exempt += 1
            continue
        paras = paragraphs(lines)
        if not paras:
            problems.append(f"README.md:{start}: empty ```swift block")
            continue
        checked += 1
        found = [path for path, text in sources.items() if contains_in_order(text, paras)]
        if not found:
            # Name the first paragraph no file holds, to point at the edited line.
            missing = next((p for p in paras if not any(contains_in_order(t, [p]) for t in sources.values())), None)
            detail = f"not found: {missing[:100]}" if missing else "its paragraphs are not in one file in this order"
            problems.append(f"README.md:{start}: ```swift block ({first[:60]}) is not in Examples/Sources; {detail}")
    for p in problems:
        print(p, file=sys.stderr)
    print(f"readme examples: {checked} Swift blocks checked against Examples/Sources, {exempt} manifest blocks exempt, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
