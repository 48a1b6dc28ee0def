"""The layering of docs/notes/architecture.md, checked on every import in the package.

Every ``import`` and ``from ... import`` in ``src/voxray`` (module-level and
function-local alike) is resolved to the voxray module it names; an import may
go to the same layer or to a lower one, never up. No module imports another
module's private (``_``-prefixed) names. Adding a format must not touch the
image, reader or writer layers: they may not name a format at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import voxray

SRC = Path(voxray.__file__).parent

#: Low to high. A module belongs to the first (longest) prefix that matches it.
LAYERS: list[tuple[str, ...]] = [
    ("voxray.errors",),
    ("voxray.planning", "voxray.sources"),
    ("voxray.reader", "voxray.graph", "voxray.proxy", "voxray.headers"),
    ("voxray.xarray.transform", "voxray.xarray.index", "voxray.xarray.build"),
    ("voxray.plotting",),
    ("voxray.image",),
    ("voxray.writers",),
    ("voxray.formats",),
    ("voxray.open",),
    ("voxray.xarray",),
    ("voxray.processing",),
    ("voxray.masking",),
    ("voxray.cli", "voxray.testing"),
    ("voxray",),
]


def layer_of(module: str) -> int:
    best, length = None, -1
    for level, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > length:
                best, length = level, len(p)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and the notes")
    return best


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path):
    """(line, imported voxray module, names) for every import in the file."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "voxray":
                    yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "voxray":
                continue
            names = tuple(a.name for a in node.names)
            # ``from . import nifti`` names a submodule, not an attribute.
            subs = [n for n in names if _is_module(f"{target}.{n}")]
            for n in subs:
                yield node.lineno, f"{target}.{n}", ()
            rest = tuple(n for n in names if n not in subs)
            if rest or not subs:
                yield node.lineno, target, rest


def _is_module(name: str) -> bool:
    path = SRC.parent / name.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").exists()


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_go_down(path):
    mod = module_name(path)
    mine = layer_of(mod)
    bad = []
    for line, target, _ in imports(path):
        if target == mod or mod.startswith(target + "."):
            continue  # a package's own __init__, or the module itself
        if layer_of(target) > mine:
            bad.append(f"{path.name}:{line} imports {target} (layer {layer_of(target)} > {mine})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_private_imports(path):
    mod = module_name(path)
    bad = [
        f"{path.name}:{line} imports {name} from {target}"
        for line, target, names in imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__") and target != mod
    ]
    assert not bad, "\n".join(bad)


def test_core_layers_name_no_format():
    """The image, reader and writer layers know no format by name (only the registry)."""
    core = [
        p
        for p in MODULES
        if module_name(p).startswith(
            ("voxray.image", "voxray.reader", "voxray.proxy", "voxray.graph", "voxray.writers")
        )
    ]
    assert core
    for path in core:
        for line, target, _ in imports(path):
            assert not target.startswith("voxray.formats"), f"{path}:{line} imports {target}"


def test_layer_table_is_complete():
    for path in MODULES:
        layer_of(module_name(path))


def test_checker_catches_an_upward_import(tmp_path, monkeypatch):
    """The walk sees function-local imports (a checker that cannot fail proves nothing)."""
    fake = SRC / "image" / "_arch_probe.py"
    fake.write_text("def f():\n    from ..open import load\n    return load\n")
    try:
        found = [t for _, t, _ in imports(fake)]
        assert "voxray.open" in found
        assert layer_of("voxray.open") > layer_of(module_name(fake))
    finally:
        fake.unlink()
