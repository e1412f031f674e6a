"""tach-bench merge: the merge benchmark runs and checks what it timed."""

from __future__ import annotations

import json


def test_merge_benchmark_smoke(capsys):
    """On 4,000 tests: the merge counted every test, and exited 1 for the failures."""
    from tach.bench import bench_merge

    code = bench_merge.main(["--repeat", "1", "--tests", "4000", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["correct"], result
    assert result["tests"] == 4000 and result["shards"] == 4
