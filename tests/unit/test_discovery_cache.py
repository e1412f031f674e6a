"""The .tach/ discovery cache: reuse, invalidation, corruption, atomic concurrent writes."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tach.discovery import discover
from tach.discovery.cache import MAGIC, SummaryCache, decode_frames, encode_frames

# The runs below pass ``site_packages=[]``: discovery reads installed plugins' modules too
# (their fixtures' params change ids), and the counts here are of the project's files.


def _project(root: Path, n: int = 3) -> Path:
    (root / "pytest.ini").write_text("[pytest]\n")
    for i in range(n):
        (root / f"test_m{i}.py").write_text(f"def test_{i}():\n    pass\n")
    return root


def _age(path: Path, seconds: int = 10) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 1_000_000_000))


def _age_all(root: Path) -> None:
    for p in root.glob("*.py"):
        _age(p)


def test_second_run_parses_no_unchanged_file(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _age_all(root)
    first = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    assert first.stats.parsed == 3 and first.stats.hits == 0
    second = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    assert second.stats.parsed == 0 and second.stats.hits == 3
    assert [t.id for t in second.result.tests] == [t.id for t in first.result.tests]


def test_changed_file_is_reparsed_and_touched_file_only_rehashed(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _age_all(root)
    discover(invocation_dir=root, with_plugins=False, site_packages=[])
    (root / "test_m0.py").write_text("def test_0():\n    pass\n\ndef test_new():\n    pass\n")
    _age(root / "test_m0.py", 5)
    os.utime(root / "test_m1.py")  # new mtime, same content
    d = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    assert d.stats.parsed == 1 and d.stats.rehashed == 1 and d.stats.hits == 1
    assert "test_m0.py::test_new" in [t.id for t in d.result.tests]


def test_recently_modified_file_is_verified_by_hash(tmp_path: Path) -> None:
    root = _project(tmp_path, 1)
    # the mtime is "now", within the racy window, so the next run re-hashes the file
    discover(invocation_dir=root, with_plugins=False, site_packages=[])
    d = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    assert d.stats.hits == 0 and d.stats.rehashed == 1 and d.stats.parsed == 0


def _file(root: Path) -> Path:
    path = SummaryCache(root / ".tach").path
    assert path is not None
    return path


def _written(frames: list[object]) -> bytes:
    return b"".join(bytes(part) for part in encode_frames([marshal.dumps(f) for f in frames]))


def _entries(path: Path) -> dict[str, Any]:
    frames = decode_frames(path.read_bytes())
    assert frames is not None and frames[0] == {"schema": "tach-discovery-cache"}
    return {k: v for entries in frames[1:] for k, v in entries.items()}


def _flip_a_byte(good: bytes) -> bytes:
    at = len(good) // 2
    return good[:at] + bytes([good[at] ^ 0x20]) + good[at + 1 :]


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda good: b"",
    "garbage": lambda good: b"\x00\xff\xfe garbage",
    "truncated": lambda good: good[: len(good) - 7],
    "a flipped byte": _flip_a_byte,
    "a JSON document of an earlier version": lambda good: (
        b'{"schema": "tach-discovery-cache", "version": 1, "entries": {}}'
    ),
    "another Python's": lambda good: good.replace(b" python ", b" python 9", 1),
    "another schema": lambda good: _written([{"schema": "something-else"}, {}]),
    "entries that are not a mapping": lambda good: _written(
        [{"schema": "tach-discovery-cache"}, [1, 2, 3]]
    ),
    "a frame running past the end": lambda good: good[: len(MAGIC) + 4]
    + (10**6).to_bytes(8, "big"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_or_foreign_cache_is_ignored_and_rebuilt(tmp_path: Path, corruption: str) -> None:
    root = _project(tmp_path)
    _age_all(root)
    found = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    expected = [t.id for t in found.result.tests]
    cache_file = _file(root)
    cache_file.write_bytes(CORRUPTIONS[corruption](cache_file.read_bytes()))
    d = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    assert [t.id for t in d.result.tests] == expected
    assert d.stats.parsed == 3 and d.stats.corrupt
    assert len(_entries(cache_file)) == 3


def test_bad_entries_are_rejected_individually(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _age_all(root)
    discover(invocation_dir=root, with_plugins=False, site_packages=[])
    cache_file = _file(root)
    entries = _entries(cache_file)
    entries[str(root / "test_m0.py")]["summary"] = {"v": -1}
    entries[str(root / "test_m1.py")]["size"] = "big"
    cache_file.write_bytes(_written([{"schema": "tach-discovery-cache"}, entries]))
    d = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    assert d.stats.rejected == 2 and d.stats.parsed == 2 and d.stats.hits == 1


def test_a_lying_entry_with_matching_stat_is_still_keyed_by_content(tmp_path: Path) -> None:
    root = _project(tmp_path, 1)
    path = root / "test_m0.py"
    _age(path)
    cache = SummaryCache(root / ".tach")
    cache.summary(path)
    cache.save()
    # rewrite the file with the same size and restore its mtime: stat alone cannot tell
    st = path.stat()
    path.write_text("def test_X():\n    pass\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    d = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    # size and mtime match and are old: the entry is trusted (like git/make); document this
    assert [t.id for t in d.result.tests] == ["test_m0.py::test_0"]
    os.utime(path)  # any mtime change makes Tach read and hash the file
    d = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    assert [t.id for t in d.result.tests] == ["test_m0.py::test_X"]


def test_no_temp_files_left_and_writes_are_atomic(tmp_path: Path) -> None:
    root = _project(tmp_path, 20)
    script = (
        "import sys; from pathlib import Path; from tach.discovery import discover\n"
        "for _ in range(15):\n"
        "    d = discover(invocation_dir=Path(sys.argv[1]), with_plugins=False, site_packages=[])\n"
        "    assert len(d.result.tests) == 20, len(d.result.tests)\n"
    )
    procs = []
    for _ in range(2):
        procs.append(subprocess.Popen([sys.executable, "-c", script, str(root)]))
    for i in range(20):
        (root / f"test_m{i}.py").write_text(f"def test_{i}():\n    pass\n# {i}\n")
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(_entries(_file(root))) == 20
    assert sorted(os.listdir(root / ".tach")) == [".gitignore", _file(root).name]


def test_unwritable_cache_dir_is_not_an_error(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / ".tach").write_text("not a directory")
    d = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    assert len(d.result.tests) == 3


def test_plugin_and_builtin_sources_are_cached_too(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _age_all(root)
    first = discover(invocation_dir=root)
    assert first.stats.parsed > 3  # pytest's own modules were read for builtin fixtures
    second = discover(invocation_dir=root)
    assert second.stats.parsed == 0


def test_a_summary_utf8_cannot_hold_is_cached_and_read_back_as_it_was(tmp_path: Path) -> None:
    root = _project(tmp_path, 2)
    # a lone surrogate is a valid str literal but not UTF-8 (nor JSON)
    (root / "test_m0.py").write_text(
        'import pytest\n\n@pytest.mark.parametrize("v", ["\\ud800"])\ndef test_s(v):\n    pass\n'
    )
    _age_all(root)
    first = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    assert [t.id for t in first.result.tests] == [
        "test_m0.py::test_s[\\ud800]",
        "test_m1.py::test_1",
    ]
    second = discover(invocation_dir=root, with_plugins=False, site_packages=[])
    assert second.stats.parsed == 0 and second.stats.hits == 2
    assert [t.id for t in second.result.tests] == [t.id for t in first.result.tests]


def test_builtin_fixtures_are_read_from_an_environment_inside_the_project(tmp_path: Path) -> None:
    # A ``.venv`` in the rootdir, and the rootdir on the import path before it (as with
    # ``.venv/bin/python -m tach`` run from the project): pytest's modules are a library there,
    # not project files.
    import _pytest

    (tmp_path / "project").mkdir()
    root = _project(tmp_path / "project")
    site = root / ".venv" / "lib" / "python3" / "site-packages"
    site.mkdir(parents=True)
    (site / "_pytest").symlink_to(Path(_pytest.__file__).parent, target_is_directory=True)
    found = discover(invocation_dir=root, use_cache=False, site_packages=[root, site])
    builtin = {f.name: f for f in found.result.fixtures if f.where == "builtin"}
    assert builtin["tmp_path"].file == str(site / "_pytest" / "tmpdir.py")
    assert builtin["capsys"].line > 0 and builtin["monkeypatch"].line > 0
    assert [t.id for t in found.result.tests] == ["test_m0.py::test_0", "test_m1.py::test_1",
                                                   "test_m2.py::test_2"]
