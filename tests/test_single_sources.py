"""Facts that used to be written in several places live in one (issue 13, "modules along their
seams"): the architecture name and the MFLOP unit in ``vad.core.modelmeta``, the channel
slicing of the network in ``training.model.slice_channels``."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO_ROOT
from vad.core.modelmeta import ARCHITECTURE_NAME, MFLOP

CODE_FOLDERS = ("vad", "runtime", "training", "scripts")
HOME = REPO_ROOT / "vad" / "core" / "modelmeta.py"


def _trees():
    for folder in CODE_FOLDERS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            yield path, ast.parse(path.read_text(), filename=str(path))


def test_the_architecture_name_and_the_mflop_unit_are_written_once():
    names, units, conversions = [], [], []
    for path, tree in _trees():
        where = path.relative_to(REPO_ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == ARCHITECTURE_NAME:
                names.append(f"{where}:{node.lineno}")
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and "MFLOP" in t.id.upper()
                                                    for t in node.targets):
                units.append(f"{where}:{node.lineno}")
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Mult)):
                sides = (node.left, node.right)
                if any(isinstance(s, ast.Constant) and s.value == MFLOP for s in sides) and "flop" in \
                        ast.unparse(node).lower():
                    conversions.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
            if isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[0], ast.Constant) \
                    and "mflop" in str(node.elts[0].value) and isinstance(node.elts[1], ast.Constant):
                conversions.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    home = str(HOME.relative_to(REPO_ROOT))
    assert [n.split(":")[0] for n in names] == [home], names
    assert [u.split(":")[0] for u in units] == [home], units
    assert conversions == []


def test_consolidation_and_pruning_share_one_slicing():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    from vad.training.dynamic import DynamicVAD, slice_into_frozen
    from vad.training.model import ArchConfig, FrozenVAD, slice_channels
    from vad.training.report import magnitude_prune

    arch = ArchConfig(n_features=40, input_width=6, conv_width=5, gru_width=4)
    full = FrozenVAD(arch).eval()
    widths = {"input": 3, "conv": 2, "gru": 3}
    pruned = magnitude_prune(full, widths)
    x = torch.randn(2, 7, 40)
    # pruning = the shared slicing at the channels of largest magnitude
    with torch.no_grad():
        imp_in = full.inp.weight.abs().sum(1) + full.dw.weight.abs().reshape(6, -1).sum(1)
    keep_in = torch.sort(torch.argsort(imp_in, descending=True)[:3]).values
    assert torch.equal(pruned.inp.weight, full.inp.weight[keep_in])
    # consolidation = the shared slicing at the first channels (plus the folds of training.dynamic,
    # which are identities for widths fixed at whole channels: no partial channel, no dropped signal)
    dynamic = DynamicVAD(arch)
    for name, w in widths.items():
        dynamic.widths[name].freeze(w)
    first = {n: torch.arange(w) for n, w in widths.items()}
    a, b = slice_into_frozen(dynamic, widths).eval(), slice_channels(dynamic, first).eval()
    with torch.no_grad():
        assert torch.equal(a(x, *a.initial_state(2))[0], b(x, *b.initial_state(2))[0])
    # all channels kept: the identical network
    everything = slice_channels(full, {n: torch.arange(w) for n, w in arch.widths.items()}).eval()
    with torch.no_grad():
        assert torch.equal(everything(x, *everything.initial_state(2))[0], full(x, *full.initial_state(2))[0])
