import datetime
import time

import pytest
import time_machine
from freezegun import freeze_time

FROZEN = datetime.datetime(2020, 2, 29, 12, 0, 0)


@freeze_time("2020-02-29 12:00:00")
def test_freezegun_decorator():
    assert datetime.datetime.now() == FROZEN
    assert datetime.date.today() == datetime.date(2020, 2, 29)


@freeze_time("2020-02-29 12:00:00")
class TestFrozenClass:
    def test_in_a_class(self):
        assert datetime.datetime.now() == FROZEN

    def test_ticks_only_when_told(self):
        assert time.time() == FROZEN.replace(tzinfo=datetime.timezone.utc).timestamp()


@pytest.fixture
def frozen():
    with freeze_time("2001-01-01") as clock:
        yield clock


def test_freezegun_fixture(frozen):
    assert datetime.date.today() == datetime.date(2001, 1, 1)
    frozen.tick(datetime.timedelta(days=1))
    assert datetime.date.today() == datetime.date(2001, 1, 2)


def test_the_clock_is_real_again():
    assert datetime.date.today().year > 2020


@time_machine.travel(datetime.datetime(1999, 12, 31, 23, 59, tzinfo=datetime.timezone.utc), tick=False)
def test_time_machine_decorator():
    assert datetime.datetime.now(datetime.timezone.utc).year == 1999


def test_time_machine_fixture(time_machine):
    time_machine.move_to(datetime.datetime(2010, 6, 1, tzinfo=datetime.timezone.utc), tick=False)
    assert datetime.datetime.now(datetime.timezone.utc) == datetime.datetime(
        2010, 6, 1, tzinfo=datetime.timezone.utc
    )
    time_machine.shift(datetime.timedelta(hours=1))
    assert datetime.datetime.now(datetime.timezone.utc).hour == 1


def test_time_machine_is_undone():
    assert time.time() > 1_600_000_000


@freeze_time("2020-02-29")
def test_a_failing_frozen_assertion():
    assert datetime.date.today() == datetime.date(2020, 3, 1)
