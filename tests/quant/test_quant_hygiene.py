"""ptqat.quant is plain PyTorch: no OpenMMLab import anywhere, no unused import."""
from __future__ import annotations

import ast
import pathlib

import pytest

QUANT_DIR = pathlib.Path(__file__).resolve().parents[2] / 'projects' / 'ptqat' / 'quant'
FILES = sorted(QUANT_DIR.rglob('*.py'))


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node, node.module


def test_package_has_modules():
    names = {f.name for f in FILES}
    assert {'__init__.py', 'lsq.py', 'layers.py', 'registry.py', 'config.py', 'calibration.py',
            'discrepancy.py', 'selection.py', 'freezing.py', 'state.py', 'onnx_export.py'} <= names


@pytest.mark.parametrize('path', FILES, ids=lambda p: p.name)
def test_no_openmmlab_imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [f'{path.name}:{node.lineno} {name}' for node, name in _imports(tree) if name.split('.')[0].startswith('mm')]
    assert not bad, f'ptqat.quant must not import OpenMMLab packages: {bad}'
    assert '__import__(' not in path.read_text() and 'import_module(' not in path.read_text()


def test_detector_catches_mm_imports():
    tree = ast.parse('import mmcv.ops\nfrom mmdet3d.models import X\nimport torch\n')
    assert [n for _, n in _imports(tree) if n.split('.')[0].startswith('mm')] == ['mmcv.ops', 'mmdet3d.models']


def _unused_imports(text):
    tree = ast.parse(text)
    imported = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and node.module == '__future__':
                continue
            for alias in node.names:
                imported[(alias.asname or alias.name).split('.')[0]] = node.lineno
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    exported = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '__all__' for t in node.targets):
            exported = {e.value for e in node.value.elts}
    # names used only inside string annotations count as used
    return [f'{name} (line {line})' for name, line in imported.items()
            if name not in used and name not in exported and f"'{name}" not in text and f'[{name}' not in text]


@pytest.mark.parametrize('path', FILES, ids=lambda p: p.name)
def test_no_unused_imports(path):
    unused = _unused_imports(path.read_text())
    assert not unused, f'unused imports in {path.name}: {unused}'


def test_unused_import_detector_works():
    assert _unused_imports('import os\nimport sys\nfrom typing import List, Dict\nx: List[int] = sys.argv\n') == \
        ['os (line 1)', 'Dict (line 3)']


def test_import_does_not_pull_openmmlab():
    import os
    import subprocess
    import sys
    code = ('import sys, ptqat.quant; openmmlab = {"mmengine", "mmcv", "mmdet", "mmdet3d", "mmseg", "mmpretrain"}; '
            'bad = [m for m in sys.modules if m.split(".")[0] in openmmlab]; assert not bad, bad')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(QUANT_DIR.parents[1]), os.environ.get('PYTHONPATH', '')]))
    subprocess.run([sys.executable, '-c', code], check=True, env=env)
