"""The package layout as a rule: no import cycle between primo's modules, and no import from a
lower layer to a higher one (imports inside functions count too). Read from the source with
``ast``; nothing is imported."""

import ast
import pathlib

import primo

ROOT = pathlib.Path(primo.__file__).parent

#: each top-level module or package of primo and its layer: a module may import only from its own
#: layer or lower ones (DESIGN.md: one concern per package, data flowing forward)
LAYERS = {
    "constants": 0, "errors": 0, "arrays": 0, "progress": 0, "_tensorflow": 0, "settings": 0,
    "dna": 1, "parallel": 1, "io": 1, "outputs": 1,
    "barcodes": 2, "features": 2, "thermo": 2, "encoder": 2,
    "oligos": 3, "evaluation": 3, "predictor": 3,
    "reads": 4, "model_dir": 4, "benchmark": 4,
    "simulation": 5,
    "training": 6,
    "workflows": 7,
    "api": 8,
    "cli": 9, "__main__": 9,
}


def _modules():
    mods = {}
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(rel[:-1]) if rel[-1] == "__init__" else ".".join(rel)
        mods[name] = p
    return mods


def _graph():
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            for t in found:
                # a package's own parents are imported before it anyway: not an edge
                if t in mods and t != m and not m.startswith(t + "."):
                    graph[m].add(t)
    return graph


def _cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "primo"


def test_no_import_cycle():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_package_has_a_layer_and_imports_only_downwards():
    graph = _graph()
    tops = {_top(m) for m in graph} - {"primo"}
    assert tops <= set(LAYERS), f"give these a layer: {sorted(tops - set(LAYERS))}"
    upward = sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts
                    if _top(m) != "primo" and _top(t) != "primo"
                    and LAYERS[_top(m)] < LAYERS[_top(t)])
    assert upward == []


def test_the_physics_and_the_settings_import_no_tensorflow():
    graph = _graph()
    for m in graph:
        if m.startswith("primo.thermo") or m == "primo.training.settings":
            text = _modules()[m].read_text(encoding="utf-8")
            assert "import tensorflow" not in text and "import keras" not in text, m
