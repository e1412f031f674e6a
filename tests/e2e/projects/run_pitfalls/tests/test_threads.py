import os
import threading


def test_main_thread_is_this_process_own():
    # The workers and test processes are forked; the thread that runs the test must carry this
    # process's ids, as it does in pytest's own process.
    assert threading.current_thread() is threading.main_thread()
    assert threading.main_thread().native_id == threading.get_native_id()
    assert str(threading.get_native_id()) in os.listdir("/proc/self/task")
