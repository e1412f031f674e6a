"""A process started with the forkserver start method: multiprocessing starts its fork server
(and resource tracker) in the test's process, where they run until that process ends."""

import multiprocessing


def child():
    pass


def test_forkserver():
    process = multiprocessing.get_context("forkserver").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
