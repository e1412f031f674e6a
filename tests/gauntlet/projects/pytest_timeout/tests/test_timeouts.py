import time

import pytest


def test_quick():
    pass


def test_hangs_past_the_ini_timeout():
    time.sleep(3600)


@pytest.mark.timeout(0)
def test_mark_zero_means_no_limit():
    time.sleep(1.5)
