"""Cold discovery in forked workers: the same result as one process, nothing left behind.

Also: ``tach list`` resolves only the tests whose ids a parametrized fixture can change, and
gets the same ids as resolving every test.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from tach.bench._data import make_suite

from tach.discovery import core, discover, pool
from tach.discovery.cache import CACHE_VERSION, decode_frames
from tach.discovery.core import Discovery
from tach.listing import discover_tests


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    """A generated suite of 60 modules, plus a syntax error, a helper module imported from
    both halves, and a conftest hook that makes the tests of a directory dynamic."""
    make_suite(tmp_path, 60)
    tests = tmp_path / "tests"
    (tests / "helpers.py").write_text(
        "import pytest\n\nslow = pytest.mark.slow\nCASES = [1, 2, 3]\n"
    )
    for pkg, name in (("pkg_0000", "test_first_half.py"), ("pkg_0001", "test_second_half.py")):
        (tests / pkg / name).write_text(
            textwrap.dedent("""
            import pytest
            from helpers import CASES, slow

            @slow
            @pytest.mark.parametrize("case", CASES)
            def test_case(case):
                pass
        """)
        )
    (tests / "pkg_0001" / "test_broken.py").write_text("def test_x(:\n    pass\n")
    gen = tests / "pkg_0001" / "generated"
    gen.mkdir()
    (gen / "conftest.py").write_text("def pytest_generate_tests(metafunc):\n    pass\n")
    (gen / "test_gen.py").write_text("def test_g(x):\n    pass\n")
    return tmp_path


def _snapshot(d: Discovery) -> dict[str, Any]:
    r = d.result
    snap = d.inputs.snapshot()
    return {
        "tests": [t.to_cache() for t in r.tests],
        "fixtures": [f.to_cache() for f in r.fixtures],
        "errors": [e.to_json() for e in r.errors],
        "warnings": [w.to_json() for w in r.warnings],
        "imports": {k: [i.to_json() for i in v] for k, v in r.imports.items()},
        "conftests": r.conftests,
        "files": sorted(snap["files"]),
        "dirs": sorted(snap["dirs"]),
    }


def _discover(root: Path, monkeypatch: pytest.MonkeyPatch, jobs: int, **kw: Any) -> Discovery:
    monkeypatch.setenv(pool.JOBS_ENV, str(jobs))
    monkeypatch.setattr(core, "PARALLEL_MIN_FILES", 8)
    return discover(invocation_dir=root, with_plugins=False, **kw)


def _children() -> bool:
    """Whether this process has any child process (running or a zombie)."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


@pytest.mark.parametrize("jobs", [2, 3])
def test_workers_give_the_same_result_as_one_process(
    suite: Path, jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial = _discover(suite, monkeypatch, 1, use_cache=False)
    forks: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counting_fork)
    parallel = _discover(suite, monkeypatch, jobs, use_cache=False)
    assert len(forks) == jobs - 1
    assert _snapshot(parallel) == _snapshot(serial)
    # a module imported from several shares may be parsed by several processes
    assert serial.stats.parsed <= parallel.stats.parsed <= serial.stats.parsed + jobs - 1
    errors = {e.file: e.message for e in parallel.result.errors}
    assert errors["tests/pkg_0001/test_broken.py"].startswith("SyntaxError")
    assert "tests/pkg_0001/test_second_half.py::test_case[3]" in [
        t.id for t in parallel.result.tests
    ]


def test_workers_fill_the_cache_and_leave_nothing_behind(
    suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fds = set(os.listdir("/proc/self/fd"))
    assert not _children()
    for p in suite.rglob("*.py"):  # old files: the second run may trust their stat
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))
    first = _discover(suite, monkeypatch, 2)
    assert set(os.listdir("/proc/self/fd")) == fds
    assert not _children()
    frames = decode_frames((suite / ".tach" / f"discovery-v{CACHE_VERSION}.cache").read_bytes())
    assert frames is not None
    entries = {k: v for frame in frames[1:] for k, v in frame.items()}
    assert len(entries) == len(first.inputs.files) - 1  # every file but pytest.ini
    cache_file = f"discovery-v{CACHE_VERSION}.cache"
    assert sorted(os.listdir(suite / ".tach")) == [".gitignore", cache_file]
    second = _discover(suite, monkeypatch, 2)
    assert second.stats.parsed == 0
    assert len(entries) <= second.stats.hits <= len(entries) + 1
    assert _snapshot(second) == _snapshot(first)


@pytest.mark.parametrize("failure", ["garbage", "truncated", "killed", "raises"])
def test_shares_of_a_failed_worker_are_collected_by_the_parent(
    suite: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    serial = _discover(suite, monkeypatch, 1, use_cache=False)
    real_work = core._Run._work
    real_iter = pool.Shares.__iter__
    parent = os.getpid()

    def worker_takes_all(self: pool.Shares) -> Any:
        # the parent takes no share itself: every share is the worker's
        return iter(()) if os.getpid() == parent else real_iter(self)

    def broken_work(self: core._Run, queue: pool.Shares, chunks: list[Any]) -> list[bytes]:
        if failure == "truncated":
            frames = real_work(self, queue, chunks)
            return [*frames[:-1], frames[-1][:-10]]
        assert list(queue)  # took them all
        if failure == "garbage":
            return [b"{not json", b"\x00\x05"]
        if failure == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("worker failed")

    monkeypatch.setattr(pool.Shares, "__iter__", worker_takes_all)
    monkeypatch.setattr(core._Run, "_work", broken_work)
    parallel = _discover(suite, monkeypatch, 2)
    assert _snapshot(parallel) == _snapshot(serial)
    assert not _children()


def test_a_whole_result_of_a_worker_is_used_as_it_came(
    suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial = _discover(suite, monkeypatch, 1, use_cache=False)
    parent = os.getpid()
    real_iter = pool.Shares.__iter__
    real_slice = core._Run.collect_slice
    collected_here: list[int] = []

    def worker_takes_all(self: pool.Shares) -> Any:
        return iter(()) if os.getpid() == parent else real_iter(self)

    def counting(self: core._Run, items: list[Any]) -> Any:
        if os.getpid() == parent:
            collected_here.append(len(items))
        return real_slice(self, items)

    monkeypatch.setattr(pool.Shares, "__iter__", worker_takes_all)
    monkeypatch.setattr(core._Run, "collect_slice", counting)
    parallel = _discover(suite, monkeypatch, 2)
    assert collected_here == []  # nothing collected again: the worker's result was whole
    assert _snapshot(parallel) == _snapshot(serial)
    for p in suite.rglob("*.py"):  # old files: the next run may trust their stat
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))
    again = _discover(suite, monkeypatch, 1)
    assert again.stats.parsed == 0  # the worker's cache entries were written as they came


def test_shares_are_taken_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with pool.Shares(300) as queue:
        job = pool.start(lambda: [str(i).encode() for i in queue])
        mine = list(queue)
        assert job is not None
        frames = job.result()
    assert frames is not None
    theirs = [int(x) for x in frames]
    assert sorted(mine + theirs) == list(range(300))


def _framed(frames: list[bytes]) -> bytes:
    body = b"".join(len(f).to_bytes(8, "big") + f for f in frames)
    return len(body).to_bytes(8, "big") + body


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (_framed([b"one", b"", b"three"]), [b"one", b"", b"three"]),
        (_framed([b"one", b"three"])[:-2], None),  # the pipe ends early
        (_framed([b"one"]) + b"x", None),  # more than announced
        (b"\x00" * 7 + b"\x0c" + b"\x00" * 7 + b"\x09four", None),  # a frame runs past the end
        (b"\x00\x00", None),
    ],
)
def test_a_result_is_whole_or_refused(written: bytes, expected: list[bytes] | None) -> None:
    r, w = os.pipe()
    try:
        os.write(w, written)
        os.close(w)
        frames = pool.Job(os.getpid(), r)._read()
    finally:
        os.close(r)
    assert (None if frames is None else [bytes(f) for f in frames]) == expected


def test_a_worker_whose_result_is_refused_while_it_writes_is_killed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # more than a pipe holds, so the worker is still writing when the parent refuses the
    # length it announced: the parent must end it rather than wait for it to exit
    monkeypatch.setattr(pool, "_MOST_BYTES", 1000)
    job = pool.start(lambda: [b"x" * (1 << 20)])
    assert job is not None
    assert job.result() is None
    assert not _children()


def test_no_workers_for_few_files_or_with_threads(
    suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fork() -> int:
        raise AssertionError("forked")

    monkeypatch.setenv(pool.JOBS_ENV, "4")
    monkeypatch.setattr(os, "fork", no_fork)
    discover(invocation_dir=suite, with_plugins=False, use_cache=False)  # 63 files < 4 * 48
    monkeypatch.setattr(core, "PARALLEL_MIN_FILES", 8)
    monkeypatch.setattr(pool.threading, "active_count", lambda: 2)
    discover(invocation_dir=suite, with_plugins=False, use_cache=False)


PARAM_FIXTURES = {
    "pytest.ini": "[pytest]\n",
    "conftest.py": """
        import pytest

        @pytest.fixture(params=[1, 2])
        def number(request):
            return request.param

        @pytest.fixture
        def uses_number(number):
            return number

        def make_params():
            return [object(), object()]

        @pytest.fixture(params=make_params())
        def opaque(request):
            return request.param

        @pytest.fixture
        def plain():
            return 0
    """,
    "test_a.py": """
        import pytest

        def test_plain(plain):
            pass

        def test_direct(number):
            pass

        def test_indirect(uses_number, plain):
            pass

        @pytest.mark.parametrize("x", [3, 4])
        def test_both(x, uses_number):
            pass

        @pytest.mark.parametrize("number", [5])
        def test_overridden(number):
            pass

        @pytest.mark.usefixtures("uses_number")
        class TestMarked:
            def test_m(self):
                pass

        def test_opaque(opaque):
            pass

        def test_opaque_twice(opaque, plain):
            pass
    """,
    "sub/conftest.py": """
        import pytest

        @pytest.fixture(autouse=True, params=["p", "q"])
        def everywhere(request):
            return request.param
    """,
    "sub/test_b.py": """
        def test_sub(plain):
            pass
    """,
}


@pytest.mark.parametrize("with_autouse", [False, True])
def test_ids_only_resolution_equals_full_resolution(tmp_path: Path, with_autouse: bool) -> None:
    for rel, text in PARAM_FIXTURES.items():
        if rel.startswith("sub/") and not with_autouse:
            continue
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    full = discover_tests(invocation_dir=tmp_path, use_cache=False, with_plugins=False)
    ids_only = discover_tests(
        invocation_dir=tmp_path, use_cache=False, with_plugins=False, closures=False
    )
    assert [t.to_cache() for t in ids_only.result.tests] == [
        t.to_cache() for t in full.result.tests
    ]
    ids = [t.id for t in full.result.tests]
    assert "test_a.py::test_indirect[1]" in ids and "test_a.py::test_plain" in ids
    assert "test_a.py::TestMarked::test_m[2]" in ids
    assert [t.dynamic is not None for t in full.result.tests if "opaque" in t.id] == [True, True]
    if with_autouse:
        assert "sub/test_b.py::test_sub[q]" in ids


def test_workers_only_for_idle_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pool.JOBS_ENV, raising=False)
    monkeypatch.setattr(pool.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    # idle ticks over 100 ticks of 4 CPUs since start-up -> processes
    monkeypatch.setattr(pool, "_STARTED", pool._CpuTimes(1000, 4000, 4))
    for idle, jobs in [(300, 4), (290, 4), (200, 3), (100, 2), (40, 1), (0, 1)]:
        now = pool._CpuTimes(1000 + idle, 4400, 4)
        monkeypatch.setattr(pool, "_cpu_times", lambda now=now: now)
        assert pool.available_jobs() == jobs
    # too short an interval to tell: the runnable tasks at this instant decide
    monkeypatch.setattr(pool, "_cpu_times", lambda: pool._CpuTimes(1004, 4008, 4))
    for running, jobs in [(1, 4), (2, 3), (4, 1), (9, 1)]:
        monkeypatch.setattr(pool, "_running_tasks", lambda running=running: running)
        assert pool.available_jobs() == jobs
    monkeypatch.setattr(pool, "_cpu_times", lambda: None)
    monkeypatch.setattr(pool, "_running_tasks", lambda: 2)
    assert pool.available_jobs() == 3
    monkeypatch.setenv(pool.JOBS_ENV, "3")
    monkeypatch.setattr(pool, "_running_tasks", lambda: 9)
    assert pool.available_jobs() == 3
    assert pool._running_tasks() >= 1  # this process, at least


def test_cpu_times_are_read_from_the_kernel() -> None:
    first = pool._cpu_times()
    assert first is not None and first.cpus >= 1
    assert 0 <= first.idle <= first.total
    busy_until = time.monotonic() + 0.2
    while time.monotonic() < busy_until:  # at least one CPU is busy: this one
        pass
    idle = first.idle_cpus(pool._cpu_times())
    assert idle is not None and 0 <= idle <= first.cpus - 0.5
