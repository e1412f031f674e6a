"""tach.listing: the whole-run cache of ``tach list`` follows every change that matters."""

from __future__ import annotations

import io
import os
from pathlib import Path

from tach.listing import ListRequest, run_list


def _ids(root: Path, **kw: object) -> list[str]:
    out, err = io.StringIO(), io.StringIO()
    run_list(ListRequest(quiet=True, **kw), out, err, invocation_dir=root)  # type: ignore[arg-type]
    return out.getvalue().splitlines()


def _age(root: Path) -> None:
    for p in root.rglob("*.py"):
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))


def test_warm_list_follows_edits_new_files_and_conftests(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    _age(tmp_path)
    assert _ids(tmp_path) == ["tests/test_a.py::test_a"]
    assert list((tmp_path / ".tach").glob("list-*.cache"))
    assert _ids(tmp_path) == ["tests/test_a.py::test_a"]  # answered from the run cache
    (tmp_path / "tests" / "test_a.py").write_text("def test_a():\n    pass\ndef test_b():\n"
                                                  "    pass\n")
    assert _ids(tmp_path) == ["tests/test_a.py::test_a", "tests/test_a.py::test_b"]
    (tmp_path / "tests" / "test_c.py").write_text("def test_c():\n    pass\n")
    assert _ids(tmp_path)[-1] == "tests/test_c.py::test_c"
    (tmp_path / "tests" / "conftest.py").write_text("collect_ignore = ['test_c.py']\n")
    assert _ids(tmp_path) == ["tests/test_a.py::test_a", "tests/test_a.py::test_b"]
    (tmp_path / "pytest.ini").write_text("[pytest]\npython_functions = nothing_\n")
    assert _ids(tmp_path) == []


def test_selection_is_part_of_the_cache_key(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_k.py").write_text("def test_one():\n    pass\ndef test_two():\n    pass\n")
    _age(tmp_path)
    assert _ids(tmp_path, keyword="one") == ["test_k.py::test_one"]
    assert _ids(tmp_path, keyword="two") == ["test_k.py::test_two"]
    assert len(_ids(tmp_path)) == 2


def test_imported_base_class_change_invalidates(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "base.py").write_text("class Base:\n    def test_x(self):\n        pass\n")
    (tmp_path / "test_sub.py").write_text("from base import Base\n\nclass TestSub(Base):\n"
                                          "    pass\n")
    _age(tmp_path)
    assert _ids(tmp_path) == ["test_sub.py::TestSub::test_x"]
    (tmp_path / "base.py").write_text("class Base:\n    def test_y(self):\n        pass\n")
    assert _ids(tmp_path) == ["test_sub.py::TestSub::test_y"]


def test_retain_keeps_what_the_listing_built_out_of_the_collectors_reach(
    tmp_path: Path,
) -> None:
    import gc

    from tach.discovery import Discovery

    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_r.py").write_text("def test_one():\n    pass\ndef test_two():\n    pass\n")
    plain = _ids(tmp_path, no_cache=True)
    retained: list[object] = []
    out, err = io.StringIO(), io.StringIO()
    was_enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    try:
        run_list(
            ListRequest(quiet=True, no_cache=True),
            out,
            err,
            invocation_dir=tmp_path,
            retain=retained,
        )
        assert gc.isenabled() == was_enabled
        assert gc.get_freeze_count() > frozen  # the survivors are no work for the collector
    finally:
        gc.unfreeze()
    assert out.getvalue().splitlines() == plain == ["test_r.py::test_one", "test_r.py::test_two"]
    (found,) = [d for d in retained if isinstance(d, Discovery)]
    assert [t.id for t in found.result.tests] == plain
    # the discovery run is kept whole (not released), for the process to end with it
    assert any(type(x).__name__ == "_Run" and x.ctxs for x in retained)
