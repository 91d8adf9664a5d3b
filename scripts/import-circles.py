#!/usr/bin/env python3
"""Fails when modules of one crate import each other in a circle.

For every library and binary crate of the workspace, each source file is a module
(`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`). An edge A -> B is a `use crate::`, `use
super::` or `use self::` line, or a `crate::a::b` path in code, of A naming module B (the
longest module prefix of the path). Code under `#[cfg(test)]` is left out: a test may reach
anywhere. Edges between a module and its own ancestor or descendant are left out too (a child
using its parent's types is how Rust nests), and every other edge is lifted to the two
siblings under the closest common parent: `external::secret -> external` is ignored,
`external::secret -> external::reconciler` is an edge between siblings. A circle is a strongly
connected group of siblings; it prints with one import line per edge, so it can be opened.

The circles that existed when this check came are listed in scripts/import-circles.known; only
a circle not listed there fails (and a listed one that is gone asks to be struck off).

Usage: scripts/import-circles.py [WORKSPACE]   (exit status 1 on a new circle)
"""
import re
import sys
from pathlib import Path

USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S | re.M)
INLINE = re.compile(r"(?<![\w:])crate((?:::\w+)+)")
TEST_ITEM = re.compile(r"^\s*#\[cfg\(test\)\]\s*\n\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", re.M)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def strip_test_modules(text):
    """Drops `#[cfg(test)] mod x { ... }` blocks (brace matching; strings rarely hold braces)."""
    out, pos = [], 0
    for m in TEST_ITEM.finditer(text):
        if m.start() < pos:
            continue
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out.append(text[pos : m.start()])
        pos = i
    out.append(text[pos:])
    return "".join(out)


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"\bas\w+$", "", tree)]
    prefix, body = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [p for part in parts if part for p in expand(prefix + part)]


def module_of(path, root):
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod" or (len(parts) == 1 and parts[0] in ("lib", "main")):
        parts = parts[:-1]
    return tuple(parts)


def crate_roots(workspace):
    for manifest in sorted(workspace.glob("**/Cargo.toml")):
        if "target" in manifest.parts or manifest.parent == workspace:
            continue
        src = manifest.parent / "src"
        if src.is_dir():
            yield manifest.parent.relative_to(workspace), src


def files_of(src):
    """Module files of the library (and main binary) crate: src/bin/ holds other crates."""
    return [p for p in src.rglob("*.rs") if "bin" not in p.relative_to(src).parts[:1]]


def resolve(path, current, modules):
    """The module a `use` path names, relative to module `current`, or None (another crate)."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    base = None
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    elif segs[0] == "self":
        base, segs = current, segs[1:]
    elif segs[0] == "super":
        base = current
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
    elif tuple(current) + (segs[0],) in modules:
        base = current  # `use child::x`: a module declared in this file
    if base is None:
        return None
    best = base
    for i in range(len(segs)):
        candidate = base + tuple(segs[: i + 1])
        if candidate in modules:
            best = candidate
        else:
            break
    return best


def edges_of(src):
    files = files_of(src)
    modules = {module_of(f, src): f for f in files}
    edges = {}
    for module, file in modules.items():
        text = strip_test_modules(strip_comments(file.read_text()))
        paths = [p for m in USE.finditer(text) for p in expand(m.group(1))]
        paths += ["crate" + m.group(1) for m in INLINE.finditer(text)]
        for p in paths:
            target = resolve(p, module, modules)
            if target is None or target == module:
                continue
            n = 0
            while n < min(len(module), len(target)) and module[n] == target[n]:
                n += 1
            if n == len(module) or n == len(target):
                continue  # ancestor or descendant
            parent, a, b = module[:n], module[n], target[n]
            edges.setdefault((parent, a, b), set()).add((module, p))
    return edges


def circles(edges):
    """Strongly connected groups of siblings (Tarjan), per parent."""
    by_parent = {}
    for parent, a, b in edges:
        by_parent.setdefault(parent, {}).setdefault(a, set()).add(b)
    found = []
    for parent, graph in by_parent.items():
        index, low, stack, on, counter = {}, {}, [], set(), [0]

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in graph.get(v, ()):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    found.append((parent, sorted(group)))

        for v in sorted(graph):
            if v not in index:
                visit(v)
    return found


def main():
    workspace = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent).resolve()
    known_file = workspace / "scripts" / "import-circles.known"
    known = {
        line.strip()
        for line in known_file.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    seen, new = set(), 0
    for crate, src in crate_roots(workspace):
        edges = edges_of(src)
        for parent, group in circles(edges):
            name = f"{crate}: {'::'.join(parent) or 'crate'}: {' <-> '.join(group)}"
            seen.add(name)
            if name in known:
                continue
            new += 1
            print(f"import circle {name}")
            for (p, a, b), uses in sorted(edges.items()):
                if p == parent and a in group and b in group:
                    module, path = min(uses)
                    more = f" (and {len(uses) - 1} more)" if len(uses) > 1 else ""
                    print(f"    {a} -> {b}: {'::'.join(module)} uses {path}{more}")
    for gone in sorted(known - seen):
        print(f"gone, remove it from {known_file.name}: {gone}")
    if new:
        print(f"{new} new import circle(s): move the shared item to a module both can import")
        return 1
    print(f"no new import circles ({len(seen)} known, listed in {known_file.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
