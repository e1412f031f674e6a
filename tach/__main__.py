"""``python -m tach``: the supervisor's entry point."""

import sys

from tach.cli import main

if __name__ == "__main__":
    sys.exit(main())
