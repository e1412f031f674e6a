import json
import os
from pathlib import Path


def record(name, worker_id, testrun_uid):
    line = {
        "test": name,
        "pid": os.getpid(),
        "worker_id": worker_id,
        "testrun_uid": testrun_uid,
        "env": {
            key: os.environ.get(key)
            for key in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")
        },
    }
    with Path(os.environ["IDENTITY_LOG"]).open("a") as log:
        log.write(json.dumps(line) + "\n")
