"""Run with --max-cpu-time 1 --max-open-files 64 (--max-processes 8 where not root)."""

import os
import subprocess

import pytest


def test_burns_cpu():
    while True:
        pass


def test_open_files_are_limited():
    opened = []
    try:
        with pytest.raises(OSError) as info:
            for _ in range(1000):
                opened.append(os.open(os.devnull, os.O_RDONLY))
        assert info.value.errno == 24  # EMFILE
        assert len(opened) < 64
    finally:
        for fd in opened:
            os.close(fd)


def test_processes_are_limited():
    if os.getuid() == 0:
        pytest.skip("RLIMIT_NPROC does not apply to root")
    started = []
    try:
        with pytest.raises(OSError):
            for _ in range(50):
                started.append(subprocess.Popen(["sleep", "30"]))
        assert len(started) < 8
    finally:
        for process in started:
            process.kill()
            process.wait()
