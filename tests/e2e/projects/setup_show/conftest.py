import pytest


@pytest.fixture(scope="session")
def server():
    yield "server"


@pytest.fixture
def terminal_note(request):
    # a fixture writing to pytest's terminal during a test, as some plugins do
    request.config.pluginmanager.get_plugin("terminalreporter").write_line("note from a fixture")
