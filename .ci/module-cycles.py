#!/usr/bin/env python3
"""Fails when a crate's top-level modules import each other in a circle.

Usage: module-cycles.py CRATE_DIR...

A top-level module is one the crate root (src/lib.rs or src/main.rs) declares with `mod`. Module A
depends on module B when a file of A names `crate::B` (or an item the root re-exports from B,
`crate::Item`), directly, through a `use crate::{...}` group, or through `super::` chains that
climb to the crate root. Comments and string literals are skipped. Every circle is printed with
the file and line of each import in it; the exit status is 1 when there is one.
"""

import os
import re
import sys

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RAW_STRING_START = re.compile(r'b?r(#*)"')
CHAR_LITERAL = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'")
TOKEN = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*|::|\n|\S")


def strip(text):
    """Returns `text` with comments, strings and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)

    def blank(s):
        out.append(re.sub(r"[^\n]", " ", s))

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(text[i:j])
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(text[i:j])
            i = j
        elif (m := RAW_STRING_START.match(text, i)) and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            end = '"' + m.group(1)
            j = text.find(end, m.end())
            j = n if j < 0 else j + len(end)
            blank(text[i:j])
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(text[i : j + 1])
            i = j + 1
        elif c == "'" and (m := CHAR_LITERAL.match(text, i)):
            blank(m.group(0))
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokens(text):
    """(token, line) pairs: identifiers (with `$crate`), `::` and single punctuation."""
    line = 1
    for m in TOKEN.finditer(text):
        t = m.group(0)
        if t == "\n":
            line += 1
        else:
            yield t, line


def group_heads(toks, start):
    """First identifiers of the items of the `{...}` group opening at `toks[start]`."""
    heads, depth, expect = [], 0, True
    for t, line in toks[start:]:
        if t == "{":
            depth += 1
            if depth == 1:
                expect = True
                continue
        elif t == "}":
            depth -= 1
            if depth == 0:
                break
        elif t == "," and depth == 1:
            expect = True
            continue
        if depth == 1 and expect and IDENT.fullmatch(t):
            heads.append((t, line))
        expect = False
    return heads


def root_items(toks):
    """`mod` names declared by the crate root, and names it re-exports mapped to their module."""
    modules, reexports = set(), {}
    depth = 0
    for k, (t, _) in enumerate(toks):
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
        elif depth == 0 and t == "mod" and k + 2 < len(toks) and toks[k + 2][0] == ";":
            modules.add(toks[k + 1][0])
    depth = 0
    for k, (t, _) in enumerate(toks):
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
        elif depth == 0 and t == "use" and k > 0 and toks[k - 1][0] in ("pub", ")"):
            module = toks[k + 1][0]
            if module not in modules:
                continue
            # The identifiers of the use tree before `,`, `}` or `;` are the names the root
            # exports (the new name where an item is renamed with `as`).
            j = k + 2
            while j < len(toks) and toks[j][0] != ";":
                t2, nxt = toks[j][0], toks[j + 1][0] if j + 1 < len(toks) else ";"
                if IDENT.fullmatch(t2) and t2 != "self" and nxt in (",", "}", ";"):
                    reexports[t2] = module
                j += 1
    return modules, reexports


def module_path(src, path):
    """Module path of a source file relative to `src`, e.g. policy/mod.rs -> [policy]."""
    parts = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if parts[-1] == "mod":
        parts.pop()
    return parts


def edges_of(crate):
    src = os.path.join(crate, "src")
    root = next(
        (os.path.join(src, f) for f in ("lib.rs", "main.rs") if os.path.exists(os.path.join(src, f))),
        None,
    )
    if root is None:
        return {}, set()
    with open(root, encoding="utf-8") as f:
        modules, reexports = root_items(list(tokens(strip(f.read()))))
    edges = {}  # (from, to) -> first "file:line"

    def target(name):
        if name in modules:
            return name
        return reexports.get(name)

    for dirpath, _, files in os.walk(src):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            if not name.endswith(".rs") or path == root:
                continue
            mpath = module_path(src, path)
            if mpath[0] not in modules:
                continue
            with open(path, encoding="utf-8") as f:
                toks = list(tokens(strip(f.read())))
            # Inline `mod name {` blocks deepen the module path until their brace closes.
            inline, depth = [], 0
            for k, (t, line) in enumerate(toks):
                if t == "{":
                    depth += 1
                    if k >= 2 and toks[k - 2][0] == "mod":
                        inline.append(depth)
                    continue
                if t == "}":
                    if inline and inline[-1] == depth:
                        inline.pop()
                    depth -= 1
                    continue
                if k + 1 >= len(toks) or toks[k + 1][0] != "::":
                    continue
                if k > 0 and toks[k - 1][0] == "::":
                    continue  # inside a path, not its start
                if t in ("crate", "$crate"):
                    if k > 0 and toks[k - 1][0] == "in":
                        continue  # pub(in crate::x) is visibility, not a dependency
                    at_root = k + 2
                elif t == "super":
                    level, j = len(mpath) + len(inline), k
                    while j + 1 < len(toks) and toks[j][0] == "super" and toks[j + 1][0] == "::":
                        level, j = level - 1, j + 2
                    if level != 0:
                        continue
                    at_root = j
                else:
                    continue
                if at_root >= len(toks):
                    continue
                if toks[at_root][0] == "{":
                    heads = group_heads(toks, at_root)
                else:
                    heads = [toks[at_root]]
                for head, hline in heads:
                    to = target(head)
                    if to and to != mpath[0]:
                        edges.setdefault((mpath[0], to), f"{os.path.relpath(path)}:{hline}")
    return edges, modules


def cycles(edges, nodes):
    """Strongly connected components with more than one module (Tarjan)."""
    graph = {v: sorted({b for (a, b) in edges if a == v}) for v in nodes}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out, graph


def one_circle(comp, graph):
    """A shortest circle through the component's first module, as a list of modules."""
    start, members = comp[0], set(comp)
    paths, seen = [[start]], {start}
    while paths:
        nxt = []
        for p in paths:
            for w in graph[p[-1]]:
                if w == start:
                    return p + [start]
                if w in members and w not in seen:
                    seen.add(w)
                    nxt.append(p + [w])
        paths = nxt
    return comp


def main(crates):
    failed = False
    for crate in crates:
        edges, modules = edges_of(crate)
        if not modules:
            print(f"module-cycles: {crate}: no src/lib.rs or src/main.rs with modules", file=sys.stderr)
            failed = True
            continue
        comps, graph = cycles(edges, modules)
        for comp in comps:
            failed = True
            circle = one_circle(comp, graph)
            steps = " -> ".join(
                f"{b} ({edges[(a, b)]})" for a, b in zip(circle, circle[1:])
            )
            print(
                f"module-cycles: {crate}: import circle {circle[0]} -> {steps}"
                + (f"; the circle's component: {', '.join(comp)}" if len(comp) > len(circle) - 1 else ""),
                file=sys.stderr,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
