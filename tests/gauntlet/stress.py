"""Stress runs of the gauntlet, not part of the default test run. Run as a script:

    python tests/gauntlet/stress.py gauntlet --iterations 1000 [--minutes M] [--full]
    python tests/gauntlet/stress.py sigkill --trials 100
    python tests/gauntlet/stress.py flood
    python tests/gauntlet/stress.py fds --units 1000

``gauntlet``: the gauntlet project again and again with random worker counts, isolation modes
and unit orders (random recorded durations decide the longest-first order); counts lost,
duplicated and wrong outcomes, processes left behind, and the latency of the hung test's report.
Without ``--full`` the slow hangs and the floods are deselected (one hang stays).

``sigkill``: SIGKILL the supervisor at a random moment of a gauntlet run; counts the processes
(of the tree it had made, found by walking /proc from its pid) still alive one second later.

``flood``: 100 MB through stdout and stderr; the supervisor's peak memory (VmHWM).

``fds``: a run of N one-test units; the supervisor's fd count over the run.

This script makes itself a child subreaper, so that anything a run leaves behind re-parents to
it and is counted (and reaped) instead of disappearing into init.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _procs import alive, children_of, descendants  # noqa: E402
from _run import free_port  # noqa: E402
from expected import EXPECTED, LEAKY  # noqa: E402

from tach._native import proc  # noqa: E402

MODES = ("none", "module", "test")
#: ``-k`` of the quick gauntlet: one hang (test_sleep) and no floods.
QUICK_K = (
    "not flood_ and not python_loop and not other_thread and not socket_recv"
    " and not pipe_read and not setup_hang and not teardown_hang"
)
QUICK_DROPPED = (
    "flood_",
    "python_loop",
    "other_thread",
    "socket_recv",
    "pipe_read",
    "setup_hang",
    "teardown_hang",
)


def tach_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tach", "--format=json", "-p", "no:cacheprovider", *args]


def reap_leftovers() -> list[int]:
    """Kill and reap whatever re-parented to this subreaper; return the live ones found."""
    found = []
    for pid in children_of(os.getpid()):
        if alive(pid):
            found.append(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return found


def randomise_order(project: Path, rng: random.Random) -> None:
    """Random recorded durations: the longest-first order of units becomes random."""
    cache = project / ".tach"
    cache.mkdir(exist_ok=True)
    durations = {test_id: rng.random() for test_id in EXPECTED}
    (cache / "durations.json").write_text(json.dumps(durations))


def expected_outcomes(mode: str, full: bool) -> dict[str, str]:
    found = {}
    for test_id, outcome in EXPECTED.items():
        if mode == "none" and test_id in LEAKY:
            continue
        if not full and any(word in test_id for word in QUICK_DROPPED):
            continue
        found[test_id] = outcome
    return found


def run_gauntlet_once(project: Path, mode: str, workers: int, full: bool) -> dict:
    args = ["--isolation", mode, "-n", str(workers)]
    if not full:
        args += ["-k", QUICK_K]
    started = time.monotonic()
    tach = subprocess.Popen(
        tach_command(*args),
        cwd=project,
        env={**os.environ, "GAUNTLET_PORT": str(free_port())},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen: dict[tuple[str, str], float] = {}
    events = []
    assert tach.stdout is not None
    with tach:
        for line in tach.stdout:
            event = json.loads(line)
            events.append(event)
            if event["event"] in ("test_start", "test_finished"):
                seen.setdefault((event["event"], event["id"]), time.monotonic())
    reported: dict[str, list[str]] = {}
    for event in events:
        if event["event"] == "test_finished":
            reported.setdefault(event["id"], []).append(f"{event['status']}:{event['when']}")
        elif event["event"] == "collect_error":
            reported.setdefault(event["id"], []).append("collect_error")
    if mode == "none":
        for test_id in LEAKY:
            reported.pop(test_id, None)
    want = expected_outcomes(mode, full)
    hung = "tests/test_hangs.py::test_sleep"
    latency = None
    if ("test_finished", hung) in seen and ("test_start", hung) in seen:
        latency = seen[("test_finished", hung)] - seen[("test_start", hung)]
    return {
        "mode": mode,
        "workers": workers,
        "returncode": tach.returncode,
        "seconds": time.monotonic() - started,
        "lost": sorted(set(want) - set(reported)),
        "extra": sorted(set(reported) - set(want)),
        "duplicated": sorted(k for k, v in reported.items() if len(v) > 1),
        "wrong": sorted(k for k, v in reported.items() if k in want and v and v[0] != want[k]),
        "leftovers": reap_leftovers(),
        "latency": latency,
    }


def cmd_gauntlet(ns: argparse.Namespace) -> dict:
    rng = random.Random(ns.seed)
    workdir = Path(tempfile.mkdtemp(prefix="tach-stress-"))
    project = workdir / "gauntlet"
    shutil.copytree(HERE / "projects" / "gauntlet", project)
    deadline = time.monotonic() + ns.minutes * 60 if ns.minutes else None
    totals = {
        "iterations": 0,
        "lost": 0,
        "duplicated": 0,
        "wrong": 0,
        "extra": 0,
        "leftovers": 0,
        "bad_exit": 0,
        "max_latency": 0.0,
        "by_mode": {},
    }
    failures = []
    try:
        for iteration in range(ns.iterations):
            if deadline is not None and time.monotonic() >= deadline:
                break
            mode, workers = rng.choice(MODES), rng.randint(1, 4)
            randomise_order(project, rng)
            result = run_gauntlet_once(project, mode, workers, ns.full)
            totals["iterations"] += 1
            totals["by_mode"][mode] = totals["by_mode"].get(mode, 0) + 1
            for key in ("lost", "duplicated", "wrong", "extra", "leftovers"):
                totals[key] += len(result[key])
            totals["bad_exit"] += result["returncode"] != 1
            if result["latency"] is not None:
                totals["max_latency"] = max(totals["max_latency"], result["latency"])
            problems = any(result[k] for k in ("lost", "duplicated", "wrong", "extra", "leftovers"))
            if problems or result["returncode"] != 1:
                failures.append({"iteration": iteration, **result})
            if ns.verbose or problems:
                print(json.dumps({"iteration": iteration, **result}), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    totals["failures"] = failures[:20]
    return totals


def cmd_sigkill(ns: argparse.Namespace) -> dict:
    rng = random.Random(ns.seed)
    workdir = Path(tempfile.mkdtemp(prefix="tach-stress-"))
    project = workdir / "gauntlet"
    shutil.copytree(HERE / "projects" / "gauntlet", project)
    survivors_total, zombies_total, trials, tree_sizes = 0, 0, 0, []
    late: list[float | None] = []
    foreign_zombies = 0
    try:
        for _ in range(ns.trials):
            mode, workers = rng.choice(MODES), rng.randint(1, 4)
            randomise_order(project, rng)
            tach = subprocess.Popen(
                tach_command("--isolation", mode, "-n", str(workers), "-k", QUICK_K),
                cwd=project,
                env={**os.environ, "GAUNTLET_PORT": str(free_port())},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            kill_at = time.monotonic() + rng.uniform(0.3, 3.0)
            tree: set[int] = set()
            while time.monotonic() < kill_at and tach.poll() is None:
                tree |= descendants(tach.pid)
                time.sleep(0.005)
            tree |= descendants(tach.pid)
            tach.kill()
            tach.wait()
            time.sleep(1.0)  # the target: nothing left one second after the kill
            left = [pid for pid in tree if alive(pid)]
            # A zombie is an ended process whose parent has not reaped it yet: one whose parent
            # is this (subreaper) script was orphaned and is ours to reap; any other would be a
            # Tach process's fault.
            zombies = [pid for pid in tree if not alive(pid) and Path(f"/proc/{pid}").exists()]
            foreign_zombies += sum(parent_of(pid) not in (os.getpid(), 0) for pid in zombies)
            survivors_total += len(left)
            zombies_total += len(zombies)
            tree_sizes.append(len(tree))
            trials += 1
            if left:
                described = {pid: describe(pid) for pid in left}
                extra = time.monotonic()
                while any(alive(pid) for pid in left) and time.monotonic() - extra < 10:
                    time.sleep(0.01)
                still = [pid for pid in left if alive(pid)]
                late.append(round(1.0 + time.monotonic() - extra, 2) if not still else None)
                print(
                    f"trial {trials}: alive 1 s after the kill: {described} ({mode}, "
                    f"-n {workers}); {'still alive 10 s later' if still else 'gone later'}",
                    flush=True,
                )
            reap_leftovers()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "trials": trials,
        "survivors": survivors_total,
        "survivors_gone_after_s": late,
        "zombies_reparented_to_this_script": zombies_total - foreign_zombies,
        "zombies_of_tach_processes": foreign_zombies,
        "processes_per_tree": [min(tree_sizes), max(tree_sizes)] if tree_sizes else [],
    }


def describe(pid: int) -> str:
    """State, parent and command line of a process, for a report."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        state = stat[stat.rindex(b")") + 2 :].split()[0].decode()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return "gone"
    pending = ""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & (1 << 8):
                pending = ", SIGKILL pending"
    return f"state {state}{pending}, parent {parent_of(pid)}: {cmdline[:160]}"


def parent_of(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        return int(stat[stat.rindex(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def watch(tach: subprocess.Popen, fds: bool = False) -> dict:
    peak_rss = hwm = 0
    fd_counts: list[int] = []
    while tach.poll() is None:
        peak_rss = max(peak_rss, status_kib(tach.pid, "VmRSS"))
        hwm = max(hwm, status_kib(tach.pid, "VmHWM"))
        if fds:
            with contextlib.suppress(OSError):
                fd_counts.append(len(os.listdir(f"/proc/{tach.pid}/fd")))
        time.sleep(0.02)
    return {
        "peak_rss_mib": round(peak_rss / 1024, 1),
        "vmhwm_mib": round(hwm / 1024, 1),
        "fd_counts": fd_counts,
    }


def cmd_flood(ns: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="tach-stress-"))
    project = workdir / "flood"
    shutil.copytree(HERE / "projects" / "flood", project)
    found = {}
    try:
        for label, extra in (("captured (fd)", []), ("--capture=sys", ["--capture=sys"])):
            for mode in MODES:
                started = time.monotonic()
                with open(workdir / "out.json", "w") as out:
                    tach = subprocess.Popen(
                        tach_command("--isolation", mode, "-n", "1", *extra),
                        cwd=project,
                        stdout=out,
                        stderr=subprocess.DEVNULL,
                    )
                    stats = watch(tach)
                size = (workdir / "out.json").stat().st_size
                found[f"{label} {mode}"] = {
                    "returncode": tach.returncode,
                    "seconds": round(time.monotonic() - started, 1),
                    "peak_rss_mib": stats["peak_rss_mib"],
                    "vmhwm_mib": stats["vmhwm_mib"],
                    "report_bytes": size,
                }
                reap_leftovers()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return found


def cmd_fds(ns: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="tach-stress-"))
    project = workdir / "many"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    for n in range(ns.units):
        (project / "tests" / f"test_u{n:04d}.py").write_text(f"def test_{n}():\n    pass\n")
    found = {}
    try:
        for mode in MODES:
            tach = subprocess.Popen(
                tach_command("--isolation", mode, "-n", "2"),
                cwd=project,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stats = watch(tach, fds=True)
            counts = stats["fd_counts"]
            steady = counts[len(counts) // 10 :] or counts
            found[mode] = {
                "returncode": tach.returncode,
                "samples": len(counts),
                "fds_first_tenth_max": max(counts[: max(1, len(counts) // 10)], default=0),
                "fds_rest_min": min(steady, default=0),
                "fds_rest_max": max(steady, default=0),
                "fds_last": counts[-1] if counts else 0,
                "peak_rss_mib": stats["peak_rss_mib"],
            }
            reap_leftovers()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gauntlet")
    g.add_argument("--iterations", type=int, default=1000)
    g.add_argument("--minutes", type=float, default=0.0, help="stop after this long")
    g.add_argument("--full", action="store_true", help="every hang and the floods too")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("-v", "--verbose", action="store_true")
    k = sub.add_parser("sigkill")
    k.add_argument("--trials", type=int, default=100)
    k.add_argument("--seed", type=int, default=None)
    sub.add_parser("flood")
    f = sub.add_parser("fds")
    f.add_argument("--units", type=int, default=1000)
    ns = parser.parse_args()
    if ns.command in ("gauntlet", "sigkill") and ns.seed is None:
        ns.seed = random.SystemRandom().randrange(2**32)
    proc.set_child_subreaper(True)
    started = time.monotonic()
    result = {"gauntlet": cmd_gauntlet, "sigkill": cmd_sigkill, "flood": cmd_flood, "fds": cmd_fds}[
        ns.command
    ](ns)
    result = {
        "command": ns.command,
        "seed": getattr(ns, "seed", None),
        "seconds": round(time.monotonic() - started, 1),
        **result,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
