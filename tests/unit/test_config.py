"""Settings resolution: command line > TACH_* environment > [tool.tach] > pytest's addopts >
defaults, with the source of every value, and [tool.tach] checked key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tach.cli import build_run_parser
from tach.config import (
    TOOL_KEYS,
    ConfigValueError,
    Layers,
    apply_pytest_options,
    build_run_config,
    load_tool_table,
    show_config,
    split_arguments,
)


def resolve(argv=(), addopts=(), environ=None, tool=None, tmp_path=Path("/project")):
    parser = build_run_parser()
    ours, theirs = split_arguments(list(argv), parser)
    ns = parser.parse_args(ours)
    layers = Layers(
        tool=tool or {},
        tool_path=tmp_path / "pyproject.toml",
        environ=environ or {},
        rootdir=tmp_path,
        invocation_dir=tmp_path / "sub",
    )
    return build_run_config(ns, theirs, list(addopts), "python", layers=layers)


@pytest.mark.parametrize(
    ("argv", "environ", "tool", "addopts", "workers", "source"),
    [
        (["-n", "3"], {"TACH_WORKERS": "5"}, {"workers": 7}, ["-n", "9"], 3, "command line"),
        ([], {"TACH_WORKERS": "5"}, {"workers": 7}, ["-n", "9"], 5, "environment"),
        ([], {}, {"workers": 7}, ["-n", "9"], 7, "[tool.tach]"),
        ([], {}, {}, ["-n", "9"], 9, "pytest ini"),
    ],
)
def test_precedence_of_layers(argv, environ, tool, addopts, workers, source):
    config = resolve(argv, addopts, environ, tool)
    assert config.workers == workers
    assert config.sources["workers"].startswith(source)


def test_defaults_and_their_source():
    config = resolve()
    assert (config.isolation, config.fmt, config.timeout, config.junit_xml) == (
        "module",
        "human",
        0.0,  # no limit
        None,
    )
    assert config.workers >= 1
    assert set(show_config(config)) == {
        "workers",
        "isolation",
        "slice",
        "timeout",
        "format",
        "junit_xml",
        "report_html",
        "addopts",
        "env",
        "python_path",
        "warm_imports",
        "keep_warm",
        "shard",
        "durations_file",
        "network",
        "private_tmp",
        "max_memory",
        "max_processes",
        "max_open_files",
        "max_cpu_time",
        "changed_since",
        "changed_deps",
    }
    assert all(entry["source"] == "default" for entry in show_config(config).values())
    assert config.shard is None and config.durations_file is None
    assert config.keep_warm is False


def test_changed_deps_from_the_config_file_and_the_command_line():
    tool = {"changed_deps": {"tests/data/**": ["tests/test_data.py"], "*.md": []}}
    argv = ["--changed-since", "main", "--changed-dep", "docs/**=", "--changed-dep", "a=b, c"]
    config = resolve(argv, [], {}, tool)
    assert config.changed_since == "main"
    assert config.changed_deps == [
        ("tests/data/**", ["tests/test_data.py"]),
        ("*.md", []),
        ("docs/**", []),
        ("a", ["b", "c"]),
    ]
    assert show_config(config)["changed_deps"]["source"].startswith("command line")
    assert resolve([], [], {"TACH_CHANGED_SINCE": "v1"}, tool).changed_since == "v1"


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("yes", True), ("off", False), ("0", False)]
)
def test_keep_warm_from_the_environment(value, expected):
    config = resolve(environ={"TACH_KEEP_WARM": value})
    assert config.keep_warm is expected
    assert show_config(config)["keep_warm"]["source"] == "environment (TACH_KEEP_WARM)"


def test_shard_from_the_command_line_the_environment_or_the_ci():
    assert resolve(["--shard", "2/4"], environ={"TACH_SHARD": "1/3"}).shard == (2, 4)
    config = resolve(environ={"TACH_SHARD": "1/3"})
    assert config.shard == (1, 3)
    assert show_config(config)["shard"] == {"value": "1/3", "source": "environment (TACH_SHARD)"}
    gitlab = {"TACH_SHARD": "auto", "CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "3"}
    assert resolve(environ=gitlab).shard == (3, 3)
    with pytest.raises(ConfigValueError, match=r"--shard takes K/N .* \(from environment"):
        resolve(environ={"TACH_SHARD": "4/3"})


def test_durations_file_is_relative_to_the_invocation_directory():
    assert resolve(["--durations-file", "d.json"]).durations_file == "/project/sub/d.json"
    config = resolve(environ={"TACH_DURATIONS_FILE": "/ci/d.json"})
    assert config.durations_file == "/ci/d.json"
    assert config.sources["durations_file"] == "environment (TACH_DURATIONS_FILE)"


def test_a_keep_warm_value_that_is_no_flag_names_the_variable():
    with pytest.raises(ConfigValueError, match="TACH_KEEP_WARM"):
        resolve(environ={"TACH_KEEP_WARM": "maybe"})


def test_paths_are_relative_to_the_rootdir_in_the_file_and_to_the_cwd_elsewhere():
    tool = {"junit_xml": "out/report.xml", "python_path": ["src", "lib"]}
    config = resolve(tool=tool)
    assert config.junit_xml == "/project/out/report.xml"
    assert config.python_path == ["/project/src", "/project/lib"]
    config = resolve(environ={"TACH_JUNIT_XML": "r.xml"}, tool=tool)
    assert config.junit_xml == "/project/sub/r.xml"
    assert resolve(["--junitxml", "a.xml"]).junit_xml == "/project/sub/a.xml"


def test_report_html_is_a_path_setting_of_every_layer_and_not_pytest_htmls_option():
    assert resolve().report_html is None
    assert resolve(tool={"report_html": "out/r.html"}).report_html == "/project/out/r.html"
    config = resolve(environ={"TACH_REPORT_HTML": "r.html"}, tool={"report_html": "x.html"})
    assert config.report_html == "/project/sub/r.html"
    assert config.sources["report_html"] == "environment (TACH_REPORT_HTML)"
    config = resolve(["--report-html", "a.html"], addopts=["--report-html=b.html"])
    assert config.report_html == "/project/sub/a.html"
    assert show_config(config)["report_html"]["value"] == "/project/sub/a.html"
    # pytest-html's --html stays pytest's: it goes to pytest, Tach writes no report of its own
    config = resolve(["--html=pytest.html"])
    assert config.report_html is None and "--html=pytest.html" in config.pytest_args


def test_tool_addopts_go_to_pytest_before_the_command_line_and_count_for_tach():
    config = resolve(
        ["-k", "fast"], tool={"addopts": ["-p", "no:cacheprovider", "--maxfail=2", "-n", "3"]}
    )
    assert config.pytest_args == ["-p", "no:cacheprovider", "--maxfail=2", "-k", "fast"]
    assert config.workers == 3


@pytest.mark.parametrize(
    ("argv", "ours", "theirs"),
    [
        # a plugin's option that takes a value: its value stays with it, in its place
        (["--cov", "pkg", "-n", "2", "tests"], ["-n", "2"], ["--cov", "pkg", "tests"]),
        (["-n2", "--isolation=test", "-x"], ["-n2", "--isolation=test"], ["-x"]),
        (["--doctest-modules", "--junitxml", "r.xml"], ["--junitxml", "r.xml"],
         ["--doctest-modules"]),
        # no abbreviations of Tach's options: pytest judges them
        (["--iso", "none"], [], ["--iso", "none"]),
        # after --, everything is pytest's
        (["-q", "--", "-n", "3"], [], ["-q", "-n", "3"]),
        (["--timeout", "5", "--reruns", "2"], ["--timeout", "5"], ["--reruns", "2"]),
    ],
)
def test_split_arguments_takes_out_only_tachs_options(argv, ours, theirs):
    assert split_arguments(argv, build_run_parser()) == (ours, theirs)


@pytest.mark.parametrize(("value", "workers"), [("0", 1), ("3", 3)])
def test_workers_accept_xdists_values(value, workers):
    assert resolve(["-n", value]).workers == workers
    assert resolve(["-n", "auto"]).workers == resolve(["-n", "logical"]).workers >= 1


def test_pytests_answer_gives_the_pytest_options():
    config = resolve()
    apply_pytest_options(
        config,
        {
            "args": ["/project/tests"],
            "args_source": "TESTPATHS",
            "rootdir": "/project",
            "inifile": "/project/pyproject.toml",
            "invocation_dir": "/project/sub",
            "options": {
                "keyword": "",
                "markexpr": "not slow",
                "maxfail": 1,
                "verbose": -1,
                "reportchars": "A",
                "tbstyle": "short",
                "capture": "no",
                "collectonly": False,
                "lf": True,
                "xmlpath": "junit.xml",
            },
        },
    )
    assert (config.keyword, config.markexpr, config.maxfail, config.verbosity) == (
        None,
        "not slow",
        1,
        -1,
    )
    assert (config.reportchars, config.tbstyle, config.capture_output) == ("A", "short", False)
    assert config.last_failed and config.args == ["/project/tests"]
    assert config.junit_xml == "/project/sub/junit.xml"


def test_timeout_format_and_isolation_from_each_layer():
    config = resolve(environ={"TACH_TIMEOUT": "2.5", "TACH_FORMAT": "json"}, tool={"timeout": 9.0})
    assert (config.timeout, config.fmt) == (2.5, "json")
    assert resolve(tool={"timeout": 9.0, "isolation": "test"}).isolation == "test"
    with pytest.raises(ConfigValueError, match="TACH_ISOLATION"):
        resolve(environ={"TACH_ISOLATION": "thread"})
    with pytest.raises(ConfigValueError, match="TACH_TIMEOUT"):
        resolve(environ={"TACH_TIMEOUT": "soon"})


def write(tmp_path: Path, table: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.tach]\n{table}\n")
    return path


def test_tool_table_is_normalised(tmp_path):
    path = write(
        tmp_path,
        'addopts = "-p no:cacheprovider -k \'a and b\'"\nenv = { DEBUG = 1, NAME = "x" }\n'
        "timeout = 3\nworkers = \"auto\"\nwarm_imports = [\"json\"]",
    )
    table = load_tool_table(path)
    assert table["addopts"] == ["-p", "no:cacheprovider", "-k", "a and b"]
    assert table["env"] == {"DEBUG": "1", "NAME": "x"}
    assert table["timeout"] == 3.0 and isinstance(table["timeout"], float)
    assert load_tool_table(tmp_path / "missing.toml") == {}


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("workers = 0", "workers"),
        ('workers = "many"', "workers"),
        ("workers = true", "workers"),
        ('isolation = "thread"', "isolation"),
        ('timeout = "10s"', "timeout"),
        ("timeout = -1", "timeout"),
        ('env = ["A=1"]', "env"),
        ("env = { A = [1] }", "env"),
        ('python_path = "src"', "python_path"),
        ("warm_imports = [1]", "warm_imports"),
        ("addopts = 3", "addopts"),
        ('format = "xml"', "format"),
        ("junit_xml = 1", "junit_xml"),
        ("network = false", "network"),
        ('network = "none"', "network"),
        ('private_tmp = "yes"', "private_tmp"),
        ("max_processes = 0", "max_processes"),
        ("max_open_files = 1.5", "max_open_files"),
        ("max_cpu_time = 0", "max_cpu_time"),
        ("max_memory = true", "max_memory"),
    ],
)
def test_wrong_types_name_the_key_the_file_and_the_type(tmp_path, table, key):
    path = write(tmp_path, table)
    with pytest.raises(ConfigValueError) as info:
        load_tool_table(path)
    message = str(info.value)
    assert str(path) in message and key in message and TOOL_KEYS[key] in message


def test_unknown_keys_are_errors(tmp_path):
    path = write(tmp_path, "wokers = 2")
    with pytest.raises(ConfigValueError, match=r"unknown key 'wokers' in \[tool.tach\]"):
        load_tool_table(path)


def test_isolation_and_limits_from_each_layer():
    config = resolve(
        ["--isolate-network", "--max-cpu-time", "2.5", "--max-open-files", "64"],
        tool={"private_tmp": True, "max_processes": 16, "max_memory": "1G"},
    )
    assert (config.isolate_network, config.private_tmp) == (True, True)
    assert config.max_cpu_time == 3.0  # whole seconds, as the kernel counts CPU time
    assert (config.max_open_files, config.max_processes, config.max_memory) == (64, 16, 1 << 30)
    assert config.sources["network"] == "command line (--isolate-network)"
    assert config.sources["private_tmp"].startswith("[tool.tach]")
    shown = show_config(config)
    assert shown["network"]["value"] == "off" and shown["max_memory"]["value"] == 1 << 30
    table = resolve(tool={"network": "off"})
    assert table.isolate_network is True and table.sources["network"].startswith("[tool.tach]")
    assert resolve(environ={"TACH_NETWORK": "off", "TACH_PRIVATE_TMP": "1"}).private_tmp is True
    assert resolve(tool={"network": "on"}).isolate_network is False
    assert resolve().isolate_network is False
    from_addopts = resolve(addopts=["--isolate-network", "--private-tmp"])
    assert from_addopts.isolate_network and from_addopts.private_tmp
    assert from_addopts.sources["network"] == "pytest ini options (addopts)"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--max-processes", "0"], "--max-processes"),
        (["--max-open-files", "many"], "--max-open-files"),
        (["--max-cpu-time", "0"], "--max-cpu-time"),
        (["--max-cpu-time", "-1"], "--max-cpu-time"),
        (["--max-memory", "12Q"], "--max-memory"),
    ],
)
def test_bad_limits_name_the_option(argv, named):
    with pytest.raises(ConfigValueError, match=named):
        resolve(argv)
