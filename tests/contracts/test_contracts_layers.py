"""Every module of the package sits in the layering contract that `lint-imports` checks."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import cascade_ml

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _layered() -> set[str]:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    names: set[str] = set()
    for contract in contracts:
        for layer in contract.get("layers", []):
            for part in layer.split("|"):
                names.add(part.strip().strip("()").removeprefix("cascade_ml."))
    return names


def test_every_top_level_module_is_in_a_layer() -> None:
    modules = {m.name for m in pkgutil.iter_modules(cascade_ml.__path__)}
    missing = sorted(modules - _layered())
    assert not missing, f"modules outside the import-linter layers: {missing}"


def test_the_contract_names_no_module_that_does_not_exist() -> None:
    modules = {m.name for m in pkgutil.iter_modules(cascade_ml.__path__)}
    assert _layered() - modules == set()
