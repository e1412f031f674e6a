"""A process started with the spawn start method: multiprocessing starts its resource tracker in
the test's process, where it runs until that process ends."""

import multiprocessing


def child():
    pass


def test_spawn():
    process = multiprocessing.get_context("spawn").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
