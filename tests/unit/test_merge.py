"""``tach merge``: shards' NDJSON streams made one run, and every way a set of streams can
fail to be a whole run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from tach.merge import export_durations, run_merge
from tach.reporter.json import schema

XSD = Path(__file__).resolve().parents[1] / "data" / "junit-10.xsd"


def start(k: int, n: int, count: int = 0) -> dict:
    return {
        "event": "run_start",
        "shard": {"index": k, "total": n},
        "schema_version": 2,
        "count": count,
        "workers": 2,
        "isolation": "module",
        "rootdir": "/src",
        "tach_version": "0",
        "pytest_version": "9.2.0",
        "python": "3.11.7",
    }


def finished(test_id: str, status: str, when: str = "call", message: str = "") -> dict:
    return {
        "event": "test_finished",
        "id": test_id,
        "file": test_id.split("::")[0],
        "line": 3,
        "status": status,
        "when": when,
        "duration_ms": 12.5,
        "message": message,
        "longrepr": "E  assert 1 == 2" if status in ("fail", "error") else "",
        "stdout": "",
        "stderr": "",
        "worker": 0,
        "pid": 7,
    }


def run_finished(exit_code: int = 0, duration_ms: float = 1000.0, **extra) -> dict:
    return {
        "event": "run_finished",
        "passed": 0,
        "failed": 0,
        "skipped": 0,
        "xfailed": 0,
        "xpassed": 0,
        "errors": 0,
        "duration_ms": duration_ms,
        "exit_code": exit_code,
        "not_run": 0,
        "interrupted": None,
        "plugin_report": "",
        **extra,
    }


def write(path: Path, events: list[dict]) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


@pytest.fixture
def shards(tmp_path) -> list[str]:
    """Three shards: passes and a failure in 1, an error, skip, xfail and xpass in 2, none
    in 3 (an empty shard)."""
    return [
        write(
            tmp_path / "s1.ndjson",
            [
                start(1, 3, 3),
                finished("a.py::t1", "pass"),
                finished("a.py::t2", "fail", message="assert 1 == 2"),
                finished("a.py::t3", "pass"),
                run_finished(1, 2000.0),
            ],
        ),
        write(
            tmp_path / "s2.ndjson",
            [
                start(2, 3, 4),
                {"event": "test_start", "id": "b.py::t1", "file": "b.py", "line": 1, "worker": 0},
                finished("b.py::t1", "error", "setup", "fixture 'db' not found"),
                finished("b.py::t2", "skip", "setup", "no network"),
                finished("b.py::t3", "xfail", message="bug 12"),
                finished("b.py::t4", "xpass"),
                {"event": "warning", "message": "w", "category": "UserWarning", "nodeid": ""},
                run_finished(1, 3000.0),
            ],
        ),
        write(tmp_path / "s3.ndjson", [start(3, 3, 0), run_finished(0, 500.0)]),
    ]


def merge(paths, tmp_path, **kw) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_merge(paths, out=out, err=err, **kw)
    return code, out.getvalue(), err.getvalue()


def test_a_whole_run_gives_pytest_summary_and_its_exit_code(shards, tmp_path):
    code, out, err = merge(shards, tmp_path)
    assert code == 1, err
    lines = out.splitlines()
    assert "FAILED a.py::t2 - assert 1 == 2" in lines
    assert "ERROR b.py::t1 - fixture 'db' not found" in lines
    assert lines[-1].strip("= ") == (
        "1 failed, 2 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 warning, 1 error in 3.00s"
    )


def test_the_merged_stream_is_one_run_valid_against_the_schema(shards, tmp_path):
    out = tmp_path / "merged.ndjson"
    code, _, _ = merge(shards, tmp_path, json_out=str(out))
    assert code == 1
    events = [json.loads(line) for line in out.read_text().splitlines()]
    validator = jsonschema.Draft202012Validator(schema())
    for event in events:
        validator.validate(event)
    kinds = [e["event"] for e in events]
    assert kinds.count("run_start") == 1 and kinds.count("run_finished") == 1
    assert kinds[0] == "run_start" and kinds[-1] == "run_finished"
    assert events[0]["count"] == 7 and events[0]["merged"] == 3 and "shard" not in events[0]
    ids = [e["id"] for e in events if e["event"] == "test_finished"]
    assert ids == [
        "a.py::t1",
        "a.py::t2",
        "a.py::t3",
        "b.py::t1",
        "b.py::t2",
        "b.py::t3",
        "b.py::t4",
    ]
    last = events[-1]
    assert (last["passed"], last["failed"], last["errors"], last["skipped"]) == (2, 1, 1, 1)
    assert last["exit_code"] == 1 and last["duration_ms"] == 3000.0


def test_the_junit_file_is_valid_and_counts_as_pytest_does(shards, tmp_path):
    xml = tmp_path / "merged.xml"
    merge(shards, tmp_path, junit_xml=str(xml))
    xmlschema.XMLSchema(str(XSD)).validate(str(xml))
    text = xml.read_text()
    assert 'tests="7"' in text and 'failures="1"' in text and 'errors="1"' in text
    assert 'skipped="2"' in text
    assert (
        '<testcase classname="a" name="t2" time="0.013"><failure message="assert 1 == 2">' in text
    )
    assert "failed on setup with &quot;fixture 'db' not found&quot;" in text


def test_all_passing_is_0_and_no_tests_at_all_is_5(tmp_path):
    a = write(tmp_path / "a", [start(1, 2), finished("x.py::t", "pass"), run_finished()])
    b = write(tmp_path / "b", [start(2, 2), run_finished()])
    assert merge([a, b], tmp_path)[0] == 0
    c = write(tmp_path / "c", [start(1, 2), run_finished()])
    assert merge([c, b], tmp_path)[0] == 5


@pytest.mark.parametrize(("shard_code", "expected"), [(2, 2), (3, 3), (4, 4)])
def test_a_shard_interrupted_or_in_error_decides_over_failures(tmp_path, shard_code, expected):
    a = write(tmp_path / "a", [start(1, 2), finished("x.py::t", "fail"), run_finished(1)])
    b = write(tmp_path / "b", [start(2, 2), run_finished(shard_code)])
    assert merge([a, b], tmp_path)[0] == expected


def test_a_missing_shard_is_an_error_naming_it(shards, tmp_path):
    code, out, err = merge([shards[0], shards[2]], tmp_path)
    assert code == 3 and out == ""
    assert "shard 2/3 missing: 2 of 3 streams given" in err


def test_a_duplicated_shard_is_an_error_naming_both_files(shards, tmp_path):
    copy = tmp_path / "again.ndjson"
    copy.write_bytes(Path(shards[1]).read_bytes())
    code, _, err = merge([*shards, str(copy)], tmp_path)
    assert code == 3
    assert f"shard 2/3 given twice: {shards[1]} and {copy}" in err


def test_a_truncated_shard_is_an_error_naming_it(shards, tmp_path):
    cut = Path(shards[1])
    lines = cut.read_text().splitlines()
    cut.write_text("\n".join(lines[:3]) + "\n")
    code, _, err = merge(shards, tmp_path)
    assert code == 3 and f"{cut} (shard 2/3): no run_finished" in err
    cut.write_text("\n".join(lines)[:-20])  # cut inside the last line
    code, _, err = merge(shards, tmp_path)
    assert code == 3 and f"{cut}:8: not an event" in err


def test_a_shard_that_failed_to_start_is_an_error_naming_it(shards, tmp_path):
    failed = write(Path(shards[2]), [run_finished(4)])
    code, _, err = merge(shards, tmp_path)
    assert code == 3
    assert (
        f"{failed}: no run_start: the shard failed to start (its run_finished says exit code 4)"
        in err
    )
    empty = Path(shards[2])
    empty.write_text("")
    assert "no run_start" in merge(shards, tmp_path)[2]


def test_shards_of_different_runs_or_a_test_run_twice_are_errors(shards, tmp_path):
    other = write(tmp_path / "o", [start(3, 4), run_finished()])
    code, _, err = merge([shards[0], shards[1], other], tmp_path)
    assert code == 3 and "shards of different runs" in err
    twice = write(tmp_path / "t", [start(3, 3), finished("a.py::t1", "pass"), run_finished()])
    code, _, err = merge([shards[0], shards[1], twice], tmp_path)
    assert code == 3 and "a.py::t1 ran in" in err and "same inputs" in err


def test_shards_that_cut_the_run_differently_are_an_error_naming_them(shards, tmp_path):
    """A module can run in no shard when the shards were cut from other durations: no test
    ran twice, yet the run is not whole. The cut's digest in each run_start shows it."""

    def planned(k: int, plan: str, *events: dict) -> str:
        first = start(k, 2)
        first["shard"]["plan"] = plan
        return write(tmp_path / f"p{k}{plan}", [first, *events, run_finished()])

    one = planned(1, "aaaa", finished("a.py::t1", "pass"))
    code, _, err = merge([one, planned(2, "bbbb", finished("c.py::t1", "pass"))], tmp_path)
    assert code == 3 and "the shards cut the run differently" in err
    assert f"{one} (shard 1/2)" in err and "--durations-file" in err
    code, _, err = merge([one, planned(2, "aaaa", finished("c.py::t1", "pass"))], tmp_path)
    assert code == 0, err


def test_a_stream_not_of_a_shard_or_an_unreadable_file(shards, tmp_path):
    plain = dict(start(1, 1))
    del plain["shard"]
    lone = write(tmp_path / "lone", [plain, run_finished()])
    code, _, err = merge([lone], tmp_path)
    assert code == 3 and "has no shard" in err
    code, _, err = merge([str(tmp_path / "nowhere.ndjson")], tmp_path)
    assert code == 4 and "nowhere.ndjson" in err


def test_an_output_that_cannot_be_written_is_a_usage_error_naming_it(shards, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = merge(shards, tmp_path, junit_xml=str(blocker / "out.xml"))
    assert code == 4 and f"cannot write {blocker / 'out.xml'}" in err


def test_durations_export_writes_the_recorded_and_the_streams_durations(shards, tmp_path):
    root = tmp_path / "root"
    (root / ".tach").mkdir(parents=True)
    (root / ".tach" / "durations.json").write_text('{"z.py::t": 2.5, "a.py::t1": 9.0}')
    target = tmp_path / "durations.json"
    err = io.StringIO()
    assert export_durations(target, root, [shards[0]], err) == 0
    data = json.loads(target.read_text())
    assert list(data) == sorted(data)
    assert data["z.py::t"] == 2.5 and data["a.py::t1"] == 0.0125
    assert export_durations(target, tmp_path / "empty", [], err) == 4
    assert "no durations recorded" in err.getvalue()
