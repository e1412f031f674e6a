"""Each test calls ``record`` first: the order tests run in and the first values of the random
generators pytest-randomly reseeds go to $RECORD_FILE, a JSON line per test."""

import json
import os
import random

import numpy
import pytest
from faker import Faker


@pytest.fixture
def record(request):
    def write():
        line = {
            "id": request.node.nodeid,
            "random": random.random(),
            "numpy": float(numpy.random.random()),
            "faker": Faker().name(),
        }
        with open(os.environ["RECORD_FILE"], "a") as file:
            file.write(json.dumps(line) + "\n")

    return write
