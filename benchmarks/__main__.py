"""``tach-bench SUBJECT [options]``: run one of Tach's benchmarks (``tach-bench --list``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: subject -> (module under tach.bench, what it measures)
SUBJECTS = {
    "frame": ("bench_frame", "frame codec: Cython against the pure-Python reference"),
    "ring": ("bench_ring", "shared-memory ring against a pipe and a socketpair, two processes"),
    "fork": ("bench_fork", "fork+exit+wait from 25/100/400 MiB processes, native vs os.fork, THP"),
    "discovery": ("bench_discovery", "static discovery against pytest --collect-only"),
    "e2e": ("bench_e2e", "generated suites: Tach in each isolation mode vs pytest and xdist"),
    "watch": ("bench_watch", "tach --watch: from an edit to the last result, vs pytest, testmon"),
    "warm": ("bench_warm", "tach --keep-warm: whole commands against pytest and cold tach"),
    "outputs": ("bench_outputs", "NDJSON and JUnit XML reporters: wall time against -q alone"),
    "merge": ("bench_merge", "tach merge of 4 shards' NDJSON streams of a 64,000-test run"),
    "shards": ("shard_agreement", "real-world corpus: 4 shards against the unsharded run"),
    "hermetic": ("bench_hermetic", "--isolate-network and --private-tmp: cost per unit"),
    "junit": ("junit_agreement", "real-world corpus: Tach's JUnit XML against pytest's"),
    "changed": ("changed_agreement", "real-world corpus: --changed-since against a full run"),
}


def _usage() -> str:
    lines = ["usage: tach-bench SUBJECT [--json] [options]   (tach-bench SUBJECT --help)", ""]
    lines += [f"  {name:10s} {what}" for name, (_, what) in SUBJECTS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the benchmark named by the first argument."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "--list"):
        print(_usage())
        return 0 if args else 4
    subject, rest = args[0], args[1:]
    if subject not in SUBJECTS:
        print(f"tach-bench: unknown subject {subject!r}\n\n{_usage()}", file=sys.stderr)
        return 4
    module = importlib.import_module(f"tach.bench.{SUBJECTS[subject][0]}")
    return module.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
