import os
import subprocess
import sys
from pathlib import Path

import pytest

from shapes import classify


@pytest.mark.parametrize(("sides", "expected"), [([3], ["triangle"]), ([4, 5], ["quad", "polygon"])])
def test_classify(sides, expected):
    assert classify(sides) == expected


def test_in_a_subprocess():
    out = subprocess.run(
        [sys.executable, "-m", "shapes", "arg"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    assert out.stdout.strip() == "subprocess"
