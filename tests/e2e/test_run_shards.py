"""``--shard K/N`` and ``tach merge`` through the real CLI on the ``shards`` project: the
shards' outcomes, put together, are the unsharded run's, id for id, each test in exactly one
shard; the same inputs give the same shards; the merge gives the whole run's exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._run import outcomes, run_tach

SHARDS = 4


def tach(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tach", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An unsharded run, its durations exported, then the 4 shards run twice by that file
    (with different hash seeds)."""
    import shutil

    from .conftest import PROJECTS

    root = tmp_path_factory.mktemp("shards") / "shards"
    shutil.copytree(PROJECTS / "shards", root)
    whole_events, whole = run_tach(root, "-n", "2")
    exported = tach(root, "durations", "--export", "durations.json")
    assert exported.returncode == 0, exported.stderr
    rounds = []
    for round_ in range(2):
        shards = []
        for k in range(1, SHARDS + 1):
            events, result = run_tach(
                root,
                "-n",
                "1",
                f"--shard={k}/{SHARDS}",
                "--durations-file",
                "durations.json",
                # each round its own hash seed: nothing may depend on it
                env={"PYTHONHASHSEED": str(round_ + 1)},
            )
            (root / f"shard{k}.{round_}.ndjson").write_text(result.stdout)
            shards.append((events, result))
        rounds.append(shards)
    return root, whole_events, whole, rounds


def test_the_union_of_the_shards_is_the_unsharded_run_id_for_id(runs):
    _, whole_events, whole, rounds = runs
    expected = outcomes(whole_events)
    assert whole.returncode == 1 and len(expected) == 78
    union: dict[str, str] = {}
    for events, result in rounds[0]:
        assert result.returncode in (0, 1), result.stderr
        found = outcomes(events)
        assert not set(found) & set(union), "a test ran in two shards"
        union.update(found)
    assert union == expected


def test_every_shard_says_which_it_is_and_none_is_empty_here(runs):
    _, _, _, rounds = runs
    plans = set()
    for k, (events, _) in enumerate(rounds[0], 1):
        start = events[0]
        assert start["event"] == "run_start"
        plans.add(start["shard"].pop("plan"))
        assert start["shard"] == {"index": k, "total": SHARDS}
        assert start["count"] == sum(1 for e in events if e["event"] == "test_finished")
        assert start["count"] > 0
    assert len(plans) == 1  # the digest of the whole cut: the same in every shard


def test_the_same_inputs_give_the_same_shards(runs):
    _, _, _, rounds = runs
    first = [sorted(outcomes(events)) for events, _ in rounds[0]]
    second = [sorted(outcomes(events)) for events, _ in rounds[1]]
    assert first == second


def test_the_heaviest_module_goes_first_to_a_shard_of_its_own(runs):
    root, _, _, rounds = runs
    durations = json.loads((root / "durations.json").read_text())
    loads = [
        sum(durations.get(test_id, 0.0) for test_id in outcomes(events)) for events, _ in rounds[0]
    ]
    # test_slow.py (0.45 s) outweighs a fair share (a quarter of the whole): longest first,
    # it is shard 1's, and the lightest shard gets the next module. test_stress.py's 400 tests,
    # all deselected by addopts' -m, weigh nothing (they had made shard 1 theirs, running none)
    assert sorted(outcomes(rounds[0][0][0])) == [
        f"tests/test_slow.py::test_slow[{n}]" for n in range(3)
    ]
    assert loads[0] == max(loads)


def test_merge_gives_the_whole_runs_outcome_and_exit_code(runs):
    root, whole_events, whole, _ = runs
    streams = [f"shard{k}.0.ndjson" for k in range(1, SHARDS + 1)]
    merged = tach(root, "merge", *streams, "--junit-xml", "merged.xml", "--json", "merged.ndjson")
    assert merged.returncode == whole.returncode == 1, merged.stderr
    events = [json.loads(line) for line in (root / "merged.ndjson").read_text().splitlines()]
    assert outcomes(events) == outcomes(whole_events)
    last, expected = events[-1], whole_events[-1]
    for key in ("passed", "failed", "skipped", "xfailed", "errors"):
        assert last[key] == expected[key], key
    line = merged.stdout.splitlines()[-1].strip("= ")
    assert line.startswith("1 failed, 74 passed, 1 skipped, 400 deselected, 1 xfailed, 1 error in ")
    # the unsharded run's closing line, but for the time
    whole_line = whole.stderr.splitlines()[-1].strip("= ")
    assert line.rpartition(" in ")[0] == whole_line.rpartition(" in ")[0]
    assert (root / "merged.xml").read_text().count("<testcase ") == 78
    missing = tach(root, "merge", *streams[:3])
    assert missing.returncode == 3 and "shard 4/4 missing" in missing.stderr


def test_an_empty_shard_exits_0_and_says_so(runs):
    root, _, _, _ = runs
    events, result = run_tach(root, "-n", "1", "--shard", "12/12", "-q")
    assert result.returncode == 0, result.stderr
    assert "shard 12/12 ran no tests" in result.stderr
    assert events[0]["shard"]["index"] == 12 and events[0]["shard"]["total"] == 12
    assert events[-1]["exit_code"] == 0


def test_shard_with_watch_is_a_usage_error(runs):
    root, _, _, _ = runs
    result = tach(root, "--shard", "1/2", "--watch")
    assert result.returncode == 4 and "--shard cannot be used with --watch" in result.stderr


@pytest.mark.parametrize("value", ["5/4", "0/4", "x"])
def test_a_bad_shard_is_a_usage_error_naming_the_option(runs, value):
    root, _, _, _ = runs
    result = tach(root, "--shard", value)
    assert result.returncode == 4
    assert "--shard takes K/N" in result.stderr and repr(value) in result.stderr


def test_a_bad_durations_file_is_a_usage_error_naming_it(runs):
    root, _, _, _ = runs
    (root / "bad.json").write_text("[1, 2]")
    result = tach(root, "--shard", "1/2", "--durations-file", "bad.json")
    assert result.returncode == 4 and "--durations-file" in result.stderr
    result = tach(root, "--shard", "1/2", "--durations-file", "nowhere.json")
    assert result.returncode == 4 and "nowhere.json" in result.stderr
