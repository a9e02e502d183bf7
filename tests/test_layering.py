"""Layers only look down: ``ptqat.datasets`` and ``ptqat.models`` never import each other
(shared geometry lives in neutral modules such as ``ptqat.box_geometry`` / ``ptqat.bev_geometry``)."""
from __future__ import annotations

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / 'projects' / 'ptqat'


def imported_modules(path: pathlib.Path) -> list:
    """Absolute names of the modules a file imports (relative imports resolved)."""
    parts = ['ptqat'] + list(path.relative_to(PKG).with_suffix('').parts)
    package = parts[:-1] if parts[-1] != '__init__' else parts[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = '.'.join(base + ([node.module] if node.module else []))
            out += [mod] + ([f'{mod}.{a.name}' for a in node.names] if not node.module or node.level else [])
    return out


@pytest.mark.parametrize('src, forbidden', [('datasets', 'ptqat.models'), ('models', 'ptqat.datasets')])
def test_datasets_and_models_do_not_import_each_other(src, forbidden):
    files = sorted((PKG / src).rglob('*.py'))
    assert files
    bad = [f'{p.relative_to(PKG)}: {m}' for p in files for m in imported_modules(p)
           if m == forbidden or m.startswith(forbidden + '.')]
    assert not bad, f'ptqat.{src} must not import {forbidden}: {bad}'


def test_relative_imports_are_resolved(tmp_path):
    assert 'ptqat.models.bevdet.bevdet' in imported_modules(PKG / 'models' / 'bevdet' / '__init__.py')
