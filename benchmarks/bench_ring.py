"""Frames per second through tach's shared-memory ring, against a pipe and a socketpair.

A forked producer sends ``--frames`` frames of ``--size`` bytes (each carrying its sequence
number in its first 8 bytes), one frame per call, to the parent, which consumes them:

* ``ring``: ``Ring.push(frame)`` per frame; the consumer takes batches with ``pop_many()`` and
  sleeps in ``wait()`` when the ring is empty.
* ``pipe`` and ``socketpair``: one ``os.write()`` per length-prefixed frame (the same thing a
  producer without shared memory has to do); the consumer reads 1 MiB chunks and splits them into
  frames (one ``bytes`` object per frame, as ``pop_many()`` returns), so the baselines pay no
  syscall per frame on the reading side. The kernel buffers are raised to the ring's capacity
  where the system allows it.

Producer and consumer are pinned to different CPUs when there are two, the garbage collector is
frozen, each transport runs ``--repeat`` times and the median is reported. Every run checks the
frame count, the last sequence number and the last frame's length; the result of that check is
printed next to each time, and the exit status is 1 if any run was wrong.

    python -m tach.bench.bench_ring [--json] [--frames N] [--size 128] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable

from tach._native.ring import Ring

SEQ = struct.Struct("<Q")
LEN = struct.Struct("<I")
CHUNK = 1 << 20
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ only exists from Python 3.10 on some builds

#: What the ring is expected to reach on a 2-core machine (DESIGN.md, "Native core").
TARGET_RING_FRAMES_PER_S = 1_000_000
TARGET_RING_OVER_PIPE = 3.0


def _cpus() -> tuple[int | None, int | None]:
    """(producer CPU, consumer CPU), or (None, None) when there is only one to run on."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _fork_producer(body: Callable[[], None], cpu: int | None) -> tuple[int, int]:
    """Fork a producer that runs ``body`` once the returned "go" fd is written to."""
    go_r, go_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(go_w)
            _pin(cpu)
            os.read(go_r, 1)
            body()
            code = 0
        finally:
            os._exit(code)
    os.close(go_r)
    return pid, go_w


def _finish(pid: int) -> bool:
    """Reap the producer; True if it exited cleanly."""
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def _verdict(count: int, last: bytes | None, frames: int, size: int) -> dict:
    last_seq = SEQ.unpack_from(last)[0] if last is not None and len(last) >= 8 else None
    return {
        "count": count,
        "last_seq": last_seq,
        "correct": count == frames and last_seq == frames - 1 and len(last or b"") == size,
    }


def run_ring(frames: int, size: int, capacity: int, cpus: tuple[int | None, int | None]) -> dict:
    """One run through a Ring; returns seconds and the correctness check."""
    with Ring(capacity, name="bench-ring") as ring:

        def produce() -> None:
            push = ring.push
            pack_into = SEQ.pack_into
            buf = bytearray(size)
            for i in range(frames):
                pack_into(buf, 0, i)
                push(buf)

        pid, go = _fork_producer(produce, cpus[0])
        pop_many = ring.pop_many
        wait = ring.wait
        count = 0
        last = None
        start = time.perf_counter()
        os.write(go, b"g")
        while count < frames:
            batch = pop_many()
            if batch:
                count += len(batch)
                last = batch[-1]
            elif not wait(1.0) and os.waitpid(pid, os.WNOHANG) != (0, 0):
                pid = 0  # the producer died: report what arrived
                break
        elapsed = time.perf_counter() - start
        os.close(go)
        clean = _finish(pid) if pid else False
    return {"seconds": elapsed, **_verdict(count, last, frames, size), "producer_ok": clean}


def _stream_producer(fd: int, frames: int, size: int) -> Callable[[], None]:
    def produce() -> None:
        write = os.write
        pack_into = SEQ.pack_into
        buf = bytearray(LEN.size + size)
        LEN.pack_into(buf, 0, size)
        view = memoryview(buf)
        whole = len(buf)
        for i in range(frames):
            pack_into(buf, LEN.size, i)
            n = write(fd, buf)
            while n < whole:  # a blocking pipe/socket writes all of a small frame; be safe
                n += write(fd, view[n:])

    return produce


def _stream_consume(fd: int, frames: int) -> tuple[int, bytes | None]:
    """Read big chunks and split length-prefixed frames, one bytes object per frame."""
    read = os.read
    unpack_from = LEN.unpack_from
    count = 0
    last = None
    pending = b""
    while count < frames:
        chunk = read(fd, CHUNK)
        if not chunk:
            break
        buf = pending + chunk if pending else chunk
        pos = 0
        end = len(buf)
        while pos + 4 <= end:
            (n,) = unpack_from(buf, pos)
            stop = pos + 4 + n
            if stop > end:
                break
            last = buf[pos + 4 : stop]
            count += 1
            pos = stop
        pending = buf[pos:]
    return count, last


def _run_stream(
    make: Callable[[], tuple[int, int]], frames: int, size: int,
    cpus: tuple[int | None, int | None],
) -> dict:
    rfd, wfd = make()
    try:
        pid, go = _fork_producer(_stream_producer(wfd, frames, size), cpus[0])
        os.close(wfd)
        wfd = -1
        start = time.perf_counter()
        os.write(go, b"g")
        count, last = _stream_consume(rfd, frames)
        elapsed = time.perf_counter() - start
        os.close(go)
        clean = _finish(pid)
    finally:
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)
    return {"seconds": elapsed, **_verdict(count, last, frames, size), "producer_ok": clean}


def _make_pipe(capacity: int) -> tuple[int, int]:
    import fcntl

    r, w = os.pipe()
    with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep the default
        fcntl.fcntl(w, F_SETPIPE_SZ, capacity)
    return r, w


def _make_socketpair(capacity: int) -> tuple[int, int]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, capacity)  # capped by wmem_max
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, capacity)
    return a.detach(), b.detach()


def run_pipe(frames: int, size: int, capacity: int, cpus: tuple[int | None, int | None]) -> dict:
    """One run through a pipe."""
    return _run_stream(lambda: _make_pipe(capacity), frames, size, cpus)


def run_socketpair(
    frames: int, size: int, capacity: int, cpus: tuple[int | None, int | None]
) -> dict:
    """One run through an AF_UNIX stream socketpair."""
    return _run_stream(lambda: _make_socketpair(capacity), frames, size, cpus)


TRANSPORTS = {"ring": run_ring, "pipe": run_pipe, "socketpair": run_socketpair}


def measure(frames: int, size: int, repeat: int, capacity: int) -> dict:
    """Run every transport ``repeat`` times (interleaved) and summarise."""
    cpus = _cpus()
    _pin(cpus[1])
    gc.collect()
    gc.freeze()
    runs: dict[str, list[dict]] = {name: [] for name in TRANSPORTS}
    for _ in range(repeat):
        for name, run in TRANSPORTS.items():  # interleaved, so drift hits every transport alike
            runs[name].append(run(frames, size, capacity, cpus))
    results = {}
    for name, rs in runs.items():
        median = statistics.median(r["seconds"] for r in rs)
        results[name] = {
            "seconds": [round(r["seconds"], 6) for r in rs],
            "median_seconds": round(median, 6),
            "frames_per_s": round(frames / median),
            "correct": [r["correct"] and r["producer_ok"] for r in rs],
            "count": [r["count"] for r in rs],
            "last_seq": [r["last_seq"] for r in rs],
        }
    ring_fps = results["ring"]["frames_per_s"]
    over_pipe = ring_fps / results["pipe"]["frames_per_s"]
    over_socketpair = ring_fps / results["socketpair"]["frames_per_s"]
    return {
        "benchmark": "ring",
        "frames": frames,
        "size": size,
        "repeat": repeat,
        "capacity": capacity,
        "pinned_cpus": {"producer": cpus[0], "consumer": cpus[1]},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "results": results,
        "ratios": {
            "ring_over_pipe": round(over_pipe, 2),
            "ring_over_socketpair": round(over_socketpair, 2),
        },
        "targets": {
            "ring_frames_per_s": TARGET_RING_FRAMES_PER_S,
            "ring_over_pipe": TARGET_RING_OVER_PIPE,
            "met": ring_fps >= TARGET_RING_FRAMES_PER_S and over_pipe >= TARGET_RING_OVER_PIPE,
        },
        "all_correct": all(all(r["correct"]) for r in results.values()),
    }


def render_markdown(report: dict) -> str:
    """A small Markdown table of a measure() report."""
    lines = [
        f"{report['frames']:,} frames of {report['size']} bytes, median of {report['repeat']} "
        f"runs (capacity {report['capacity']:,} bytes; producer CPU "
        f"{report['pinned_cpus']['producer']}, consumer CPU {report['pinned_cpus']['consumer']})",
        "",
        "| transport | frames/s | median s | vs ring | correct |",
        "|---|---:|---:|---:|---|",
    ]
    ring_fps = report["results"]["ring"]["frames_per_s"]
    for name, r in report["results"].items():
        ok = sum(r["correct"])
        lines.append(
            f"| {name} | {r['frames_per_s']:,} | {r['median_seconds']:.3f} | "
            f"{ring_fps / r['frames_per_s']:.2f}x | {ok}/{len(r['correct'])} |"
        )
    t = report["targets"]
    lines += [
        "",
        f"Targets: ring >= {t['ring_frames_per_s']:,} frames/s and >= {t['ring_over_pipe']}x "
        f"pipe: {'met' if t['met'] else 'NOT met'} "
        f"(ring/pipe {report['ratios']['ring_over_pipe']}x, "
        f"ring/socketpair {report['ratios']['ring_over_socketpair']}x)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 if any run delivered wrong data)."""
    parser = argparse.ArgumentParser(prog="python -m tach.bench.bench_ring", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames per run")
    parser.add_argument("--size", type=int, default=128, help="frame size in bytes (>= 8)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per transport")
    parser.add_argument("--capacity", type=int, default=1 << 20, help="ring capacity in bytes")
    args = parser.parse_args(argv)
    if args.size < SEQ.size:
        parser.error(f"--size must be at least {SEQ.size} (the sequence number)")
    if args.frames < 1 or args.repeat < 1:
        parser.error("--frames and --repeat must be positive")
    report = measure(args.frames, args.size, args.repeat, args.capacity)
    print(json.dumps(report) if args.json else render_markdown(report))
    return 0 if report["all_correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
