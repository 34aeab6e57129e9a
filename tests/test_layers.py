"""The layers point one way: vad.core <- vad.runtime <- vad.training <- vad.apps.

Every import in every module, including the ones inside functions, is checked, so a lazy
import cannot hide an upward dependency."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

# folder in the checkout -> import name it installs as (pyproject.toml's package-dir)
SOURCE_ROOTS = {"vad": "vad", "runtime": "vad.runtime", "training": "vad.training", "models": "vad.models"}
LAYERS = (  # (import prefix, layer); the longest matching prefix wins
    ("vad.core", 0),
    ("vad.models", 0),
    ("vad", 0),  # vad/__init__.py re-exports a few core facts only
    ("vad.runtime", 1),
    ("vad.training", 2),
    ("vad.apps", 3),
    ("vad.__main__", 3),
)
TORCH_FREE_BELOW = 2  # core and runtime never import torch


def _layer(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return None if best is None else best[1]


def _modules():
    for folder, root in SOURCE_ROOTS.items():
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([root, *parts])
            yield name, path, path.name == "__init__.py"


def _imports(name: str, path: Path, is_package: bool):
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from vad import apps` imports vad.apps
                yield node.lineno, f"{target}.{alias.name}"


def _violations():
    found = []
    for name, path, is_package in _modules():
        own = _layer(name)
        assert own is not None, f"{name} is in no layer"
        for lineno, target in _imports(name, path, is_package):
            where = f"{path.relative_to(REPO_ROOT)}:{lineno}"
            if target == "torch" or target.startswith("torch."):
                if own < TORCH_FREE_BELOW:
                    found.append(f"{where}: {name} (layer {own}) imports torch")
                continue
            if target in ("runtime", "training", "models") or target.split(".")[0] in ("runtime", "training", "models"):
                found.append(f"{where}: {name} imports the folder name {target!r}; use vad.{target}")
                continue
            layer = _layer(target)
            if layer is not None and target != "vad" and layer > own:
                if not (target.startswith("vad.") and _is_reexport(target)):
                    found.append(f"{where}: {name} (layer {own}) imports {target} (layer {layer})")
    return found


def _is_reexport(target: str) -> bool:
    # `from vad import FeatureSpec` yields "vad.FeatureSpec": an attribute of vad/__init__, not a module
    head, _, tail = target.rpartition(".")
    return head == "vad" and tail[:1].isupper()


def test_no_module_imports_a_higher_layer():
    assert _violations() == []


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    """A core module importing the engine (even inside a function) is reported."""
    fake = tmp_path / "vad" / "core"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("def f():\n    from vad.runtime.engine import StreamingVAD\n    import torch\n")
    monkeypatch.setattr(f"{__name__}.REPO_ROOT", tmp_path)
    monkeypatch.setattr(f"{__name__}.SOURCE_ROOTS", {"vad": "vad"})
    found = _violations()
    assert any("imports vad.runtime.engine (layer 1)" in v for v in found), found
    assert any("imports torch" in v for v in found), found
