import os

import pytest

LOG = os.environ.get("TACH_E2E_LOG")


def record(event):
    """Append one line to the log the end-to-end test reads (setups and teardowns, with pid)."""
    if LOG:
        with open(LOG, "a") as f:
            f.write(f"{event} {os.getpid()}\n")


@pytest.fixture(scope="session")
def costly_session():
    record("session-setup")
    yield {"connections": 1}
    record("session-teardown")


@pytest.fixture(scope="package")
def package_resource():
    record("package-setup")
    yield "pkg"
    record("package-teardown")


@pytest.fixture(scope="module")
def module_resource(request):
    record(f"module-setup {request.module.__name__}")
    yield request.module.__name__
    record(f"module-teardown {request.module.__name__}")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request):
    record(f"backend-setup {request.param}")
    yield request.param
    record(f"backend-teardown {request.param}")


@pytest.fixture(autouse=True)
def _env_marker(monkeypatch):
    monkeypatch.setenv("RUN_FEATURES", "1")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "hooked" in item.name:
            item.add_marker(pytest.mark.hooked)


def pytest_runtest_setup(item):
    if item.get_closest_marker("hooked") and os.environ.get("RUN_FEATURES_SKIP_HOOKED"):
        pytest.skip("skipped by the conftest hook")


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".check" and file_path.name.startswith("test"):
        return CheckFile.from_parent(parent, path=file_path)


class CheckFile(pytest.File):
    def collect(self):
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            if line.strip():
                yield CheckItem.from_parent(self, name=f"line{number}", expression=line.strip())


class CheckItem(pytest.Item):
    def __init__(self, *, expression, **kwargs):
        super().__init__(**kwargs)
        self.expression = expression

    def runtest(self):
        if not eval(self.expression):
            raise AssertionError(f"check failed: {self.expression}")

    def reportinfo(self):
        return self.path, 0, f"check {self.name}"
