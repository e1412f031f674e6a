"""Tach's benchmarks, installed as :mod:`tach.bench` and run by the ``tach-bench`` command.

Each ``bench_<subject>.py`` is runnable on its own (``python -m tach.bench.bench_frame --json``)
and through ``tach-bench <subject>``.
"""
