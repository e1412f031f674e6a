import pytest

from conftest import record


@pytest.mark.parametrize("n", range(3))
def test_identity(n, worker_id, testrun_uid):
    record(f"{__name__}[{n}]", worker_id, testrun_uid)
