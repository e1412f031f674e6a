"""A pytest plugin that writes the warnings pytest records (those its summary counts) to
$WARNING_RECORDER_FILE as JSON: ``[category, message, nodeid]`` each. Used with
``-p warning_recorder``."""

import json
import os

import pytest


class Recorder:
    def __init__(self, path):
        self.path = path
        self.warnings = []

    @pytest.hookimpl(trylast=True)
    def pytest_warning_recorded(self, warning_message, when, nodeid, location):
        self.warnings.append(
            [warning_message.category.__name__, str(warning_message.message), nodeid]
        )

    def pytest_unconfigure(self):  # after the warnings of pytest_sessionfinish are recorded
        with open(self.path, "w") as f:
            json.dump(self.warnings, f, indent=1)


def pytest_configure(config):
    path = os.environ.get("WARNING_RECORDER_FILE")
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(Recorder(path), "warning_recorder_instance")
