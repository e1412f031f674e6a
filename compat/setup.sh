#!/usr/bin/env bash
# Build Tach's compatibility corpus (sources + one venv per project); see setup_projects.py.
#   compat/setup.sh [--project NAME ...] [--jobs N] [--tach DIR] [--force]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${TACH_COMPAT_PYTHON:-python3}" "$HERE/setup_projects.py" "$@"
