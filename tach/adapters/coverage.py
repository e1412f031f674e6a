"""pytest-cov: coverage measured in every process, combined and reported once.

pytest-cov starts coverage in the zygote, as pytest's own process would (``--cov`` starts it
while the initial conftests load, so that their imports are measured), with a data file suffix
per process. Its controller there is the *central* one: at the end of the session it saves its
data, combines every ``.coverage.*`` file beside its data file, reports, and fails the session
under ``--cov-fail-under``. Forked workers and test processes inherit the running tracer and
what it has measured so far; each must save its own data file before it ends, and must not
combine or report (that is the controller's work, once, in the zygote). Coverage's data layer
notices the fork and picks a new file name (its pid is part of it). This is what pytest-cov's
collocated xdist worker does: save, and leave the combining to the controller.
"""

from __future__ import annotations

import contextlib
import types
from typing import Any

import pytest


class CoverageAdapter:
    """The worker side of pytest-cov's central controller (see the module docstring)."""

    plugin = "_cov"

    def worker_started(self, plugin: Any, config: pytest.Config) -> None:
        controller = getattr(plugin, "cov_controller", None)
        if controller is None or getattr(plugin, "_disabled", False):
            return
        # pytest-cov's session wrapper calls ``finish`` in every process that ends a session;
        # in a worker that is the worker's end: save, do not combine (``config.workerinput``
        # is set, so it does not report either).
        controller.finish = types.MethodType(_save_only, controller)

    def process_ending(self, plugin: Any, config: pytest.Config) -> None:
        controller = getattr(plugin, "cov_controller", None)
        if controller is None or getattr(plugin, "_disabled", False):
            return
        _save_only(controller)


def _save_only(controller: Any) -> None:
    """Stop measuring and write this process's data file (once per process)."""
    cov = getattr(controller, "cov", None)
    if cov is None:
        return
    topdir = getattr(controller, "ensure_topdir", contextlib.nullcontext)
    with topdir():
        cov.stop()
        cov.save()
