"""tach-bench outputs: the reporter-overhead benchmark runs and checks what it timed."""

from __future__ import annotations

import json


def test_outputs_benchmark_smoke(capsys):
    """The reporter-overhead benchmark on a tiny suite: every runner counted every test."""
    from tach.bench import bench_outputs

    code = bench_outputs.main(
        ["--repeat", "1", "--modules", "2", "--per-module", "5", "--workers", "1", "--json"]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["correct"]
    assert [row["runner"] for row in result["rows"]] == ["quiet", "json", "json+junit"]
    assert result["rows"][0]["ratio_of_medians"] == 1.0
