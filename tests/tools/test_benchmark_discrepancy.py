"""tools/benchmark_discrepancy.py runs both variants and they agree."""
from tool_loader import load_tool


def test_benchmark_discrepancy_small(capsys):
    rows = load_tool('benchmark_discrepancy').main(['--shape', '2,3,40', '--repeats', '1', '--metric', 'cosine'])
    assert set(rows) == {'former', 'current'}
    for a, b in zip(rows['former']['result'], rows['current']['result']):
        assert abs(a - b) <= 1e-9 * max(abs(a), 1e-30)
    assert 'peak extra memory' in capsys.readouterr().out
