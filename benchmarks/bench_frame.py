"""Frame codec throughput: the Cython codec against the pure-Python ``struct`` + orjson reference.

Three measurements, each an encode followed by a decode of the same frame:

* ``raw``: a 200-byte payload that is already bytes (FLAG_RAW): the codec's own work.
* ``json``: a ~200-byte JSON object (a typical ``test_report``): codec plus orjson, which
  dominates and is identical on both sides.
* ``stream``: 1,000 JSON frames reassembled from 4 KiB reads by ``FrameDecoder``.

Run: ``python -m tach.bench.bench_frame [--json] [--repeat N]`` or ``tach-bench frame``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tach._native import frame as native
from tach._native import pyframe as reference

from ._util import emit, machine, median, per_call_ns, pin_to_cpu

REPORT = {
    "event": "test_report",
    "id": "tests/unit/test_scheduler.py::TestSlots::test_longest_first[4-workers]",
    "when": "call",
    "outcome": "passed",
    "duration": 0.000123,
    "worker": 3,
    "pid": 123456,
}




def _stream_case(codec, frames: bytes, chunk: int):
    chunks = [frames[i : i + chunk] for i in range(0, len(frames), chunk)]

    def decode_stream() -> None:
        decoder = codec.FrameDecoder()
        for piece in chunks:
            decoder.feed(piece)

    return decode_stream


def run(repeat: int) -> dict[str, object]:
    raw_payload = bytes(range(200))
    stream = b"".join(native.encode(1, {**REPORT, "seq": i}) for i in range(1000))
    cases = {
        "raw": {
            codec.__name__: (lambda c=codec: c.decode(c.encode_raw(2, raw_payload)))
            for codec in (native, reference)
        },
        "json": {
            codec.__name__: (lambda c=codec: c.decode(c.encode(2, REPORT)))
            for codec in (native, reference)
        },
        "stream": {
            codec.__name__: _stream_case(codec, stream, 4096) for codec in (native, reference)
        },
    }
    numbers = {"raw": 200_000, "json": 100_000, "stream": 200}
    per_frame = {"raw": 1, "json": 1, "stream": 1000}
    results: dict[str, object] = {}
    for case, fns in cases.items():
        row: dict[str, object] = {}
        for name, fn in fns.items():
            ns = median(per_call_ns(fn, numbers[case], repeat)) / per_frame[case]
            row["native" if name == native.__name__ else "reference"] = {
                "ns_per_frame": round(ns, 1),
                "frames_per_s": round(1e9 / ns),
            }
        row["speedup"] = round(
            row["reference"]["ns_per_frame"] / row["native"]["ns_per_frame"], 2  # type: ignore[index]
        )
        results[case] = row
    # Correctness next to the time: both codecs agree on what they measured.
    results["correct"] = (
        native.decode(native.encode_raw(2, raw_payload))[2] == raw_payload
        and native.encode(2, REPORT) == reference.encode(2, REPORT)
        and len(native.FrameDecoder().feed(stream)) == 1000
    )
    results["json_payload_bytes"] = len(native.encode(2, REPORT)) - native.HEADER_SIZE
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tach-bench frame", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (median)")
    args = parser.parse_args(argv)
    pin_to_cpu()
    results = run(args.repeat)
    table = [["case", "native ns/frame", "reference ns/frame", "speedup"]]
    for case in ("raw", "json", "stream"):
        row = results[case]
        table.append([case, row["native"]["ns_per_frame"], row["reference"]["ns_per_frame"],
                      f"{row['speedup']}x"])
    emit({"benchmark": "frame", "machine": machine(), "results": results}, args.json, table)
    return 0 if results["correct"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
