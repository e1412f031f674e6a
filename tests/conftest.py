"""Shared test fixtures: a seeded random source that shows its seed, and process helpers."""

from __future__ import annotations

import os
import random

import pytest


class Rand(random.Random):
    """A seeded ``random.Random`` whose repr names its seed, so a failure can be replayed."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.seed_value = seed

    def __repr__(self) -> str:
        return f"Rand(seed={self.seed_value})"


@pytest.fixture
def rand() -> Rand:
    """A seeded random source; set TACH_TEST_SEED to replay a failure."""
    seed = int(os.environ.get("TACH_TEST_SEED") or random.SystemRandom().randrange(2**32))
    return Rand(seed)
