"""tach.resolver: visibility, override chains, autouse order, closure order, problems."""

from __future__ import annotations

from tach.discovery.model import FixtureDef, TestDef
from tach.resolver import Resolver, resolve_all


def fx(name: str, baseid: str = "", where: str = "conftest", scope: str = "function",
       deps: tuple[str, ...] = (), autouse: bool = False, params: list[str] | None = None,
       line: int = 1) -> FixtureDef:
    file = {"conftest": f"{baseid}/conftest.py".lstrip("/"), "builtin": "",
            "module": baseid, "class": baseid.split("::")[0]}[where]
    return FixtureDef(name, scope, autouse, list(deps), file, line, where, baseid, params)


def t(nodeid: str, fixtures: list[str], direct: list[str] | None = None) -> TestDef:
    return TestDef(nodeid, nodeid.split("::")[0], 1, nodeid.rsplit("::", 1)[1],
                   fixtures=fixtures, direct_params=direct or [])


def test_most_specific_definition_wins_and_visibility_is_by_node() -> None:
    r = Resolver([
        fx("db", "", scope="session"),
        fx("db", "tests/sub", deps=("db",)),
        fx("db", "tests/sub/test_a.py", where="module"),
    ])
    res = r.resolve(t("tests/sub/test_a.py::test_x", ["db"]))
    assert res.bound["db"].where == "module"
    res = r.resolve(t("tests/sub/test_b.py::test_x", ["db"]))
    assert res.bound["db"].baseid == "tests/sub"
    assert res.widest_scope == "session"  # the overridden session db is set up too
    res = r.resolve(t("tests/other/test_c.py::test_x", ["db"]))
    assert res.bound["db"].baseid == "" and not r.problems
    # a sibling directory named like a prefix does not see tests/sub's conftest
    res = r.resolve(t("tests/subway/test_d.py::test_x", ["db"]))
    assert res.bound["db"].baseid == ""


def test_closure_order_autouse_first_then_sorted_by_scope() -> None:
    r = Resolver([
        fx("tmp_path_factory", where="builtin", scope="session"),
        fx("tmp_path", where="builtin", deps=("request", "tmp_path_factory")),
        fx("env", "tests", autouse=True),
        fx("aaa", "tests", autouse=True, scope="module"),
        fx("mod", "tests/test_a.py", where="module", autouse=True),
        fx("db", "", scope="session"),
    ], ini_usefixtures=["db"])
    res = r.resolve(t("tests/test_a.py::test_x", ["tmp_path"]))
    # initial: ini usefixtures, autouse by node (conftest before module; by name inside a
    # node), then arguments; then a stable sort by scope, widest first
    assert res.closure == ["db", "tmp_path_factory", "aaa", "env", "mod", "tmp_path",
                           "request"]
    assert res.widest_scope == "session"


def test_direct_parameters_are_not_fixtures() -> None:
    r = Resolver([fx("x", "", params=["1", "2"])])
    res = r.resolve(t("t.py::test_a", [], direct=["x"]))
    assert not r.problems and res.closure == []


def test_cycle_is_reported_with_chain() -> None:
    r = Resolver([fx("a", deps=("b",), line=3), fx("b", deps=("c",), line=5),
                  fx("c", deps=("a",), line=7)])
    r.resolve(t("t.py::test_x", ["a"]))
    cycles = [p for p in r.problems if p.kind == "cycle"]
    assert len(cycles) == 1
    assert "a -> b -> c -> a" in cycles[0].message
    assert (cycles[0].file, cycles[0].line) == ("conftest.py", 7)


def test_self_request_is_an_override_not_a_cycle() -> None:
    r = Resolver([fx("db", ""), fx("db", "tests", deps=("db",))])
    r.resolve(t("tests/test_a.py::test_x", ["db"]))
    assert r.problems == []
    r.resolve(t("other/test_a.py::test_x", ["db"]))
    assert r.problems == []


def test_scope_mismatch_reported_at_the_wider_fixture() -> None:
    r = Resolver([fx("sess", scope="session", deps=("func",), line=10), fx("func", line=20)])
    r.resolve(t("t.py::test_x", ["sess"]))
    [p] = r.problems
    assert p.kind == "scope-mismatch" and p.line == 10
    assert "session" in p.message and "function" in p.message and "conftest.py:20" in p.message


def test_unknown_fixture_error_or_warning() -> None:
    r = Resolver([])
    r.resolve(t("t.py::test_x", ["nope", "request"]))
    [p] = r.problems
    assert p.kind == "unknown-fixture" and p.severity == "error" and "'nope'" in p.message
    r = Resolver([], plugins_complete=False)
    r.resolve(t("t.py::test_x", ["nope"]))
    assert r.problems[0].severity == "warning"


def test_parametrized_fixture_expands_ids_before_direct_ids() -> None:
    r = Resolver([fx("fx", "", params=["a", "b"]), fx("mod", "", scope="module",
                                                        params=["1", "2"])])
    tests, _ = resolve_all([t("t.py::test_x[10]", ["mod", "x", "fx"], direct=["x"])], r)
    assert [x.id for x in tests] == ["t.py::test_x[1-a-10]", "t.py::test_x[1-b-10]",
                                     "t.py::test_x[2-a-10]", "t.py::test_x[2-b-10]"]


def test_non_literal_fixture_params_make_the_test_dynamic() -> None:
    f = fx("fx", "")
    f.params_dynamic = "params are not a literal list"
    r = Resolver([f])
    tests, _ = resolve_all([t("t.py::test_x[1]", ["fx"]), t("t.py::test_x[2]", ["fx"])], r)
    assert [(x.id, bool(x.dynamic)) for x in tests] == [("t.py::test_x", True)]
