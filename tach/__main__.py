"""``python -m tach``: the supervisor's entry point."""

from tach.cli import run_and_exit

if __name__ == "__main__":
    run_and_exit()
