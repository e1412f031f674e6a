"""``--changed-since REF``: run only the tests a change since a git revision can affect.

What changed is asked of git: the files that differ between the merge base of ``REF`` and
``HEAD`` and the work tree (what the branch committed since it left ``REF``, and what is staged
or only written), and the untracked files ``.gitignore`` does not hide. Which tests they affect
follows the rules of ``tach --watch`` (:mod:`tach.graph`), first rule first:

1. a file a ``--changed-dep GLOB=PATHS`` (``[tool.tach] changed_deps``) names: the tests under
   those paths, and what the rules below find of it when it is a Python module;
2. pytest's or Tach's configuration, or what says which packages are installed
   (``pyproject.toml``, ``pytest.ini``, ``tox.ini``, ``setup.cfg``, ``setup.py``, lock and
   requirements files): every test;
3. a ``conftest.py``, or the ``__init__.py`` of a test package (added, changed or deleted): the
   tests below its directory;
4. a test file: its tests;
5. a module of the project: the test modules whose imports reach it (a deleted one: whose
   imports name it), directly or through other project modules or a conftest above them;
6. anything else under the rootdir (a data file, a module only imported by a computed name):
   the import graph cannot tell who reads it, so every test runs, and Tach says which file
   made it so.

What ``--watch`` never watches is left out (bytecode, caches, virtualenvs, build output:
:func:`tach.graph.not_source`), and so is a file outside the rootdir that no test's
imports reach.

Nothing here imports user code: the graph is read with ``ast``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tach.graph import CONFIG_FILES, ImportGraph, not_source
from tach.scheduler import Unit

#: Files whose change means the installed packages, hence any test's outcome, may differ.
ENVIRONMENT_FILES = frozenset(
    {"setup.py", "poetry.lock", "uv.lock", "pdm.lock", "Pipfile", "Pipfile.lock"}
)
_REQUIREMENTS = re.compile(r"^(requirements|constraints)([-_.].*)?\.(txt|in)$")


class ChangedSinceError(Exception):
    """``--changed-since`` cannot be answered (no git, not a work tree, an unknown revision);
    the message says what to do."""


@dataclasses.dataclass
class GitChange:
    """The files a change since ``ref`` touched, absolute."""

    ref: str
    #: The commit the work tree was compared with: the merge base of ``ref`` and ``HEAD``,
    #: else ``ref`` itself (``merge_base`` False: a shallow clone without the common history).
    base: str
    merge_base: bool
    files: list[Path]


def git_change(ref: str, directory: Path) -> GitChange:
    """What changed in the git work tree holding ``directory`` since ``ref``."""
    top = Path(_git(directory, "rev-parse", "--show-toplevel").strip())
    commit = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", what=ref).strip()
    try:
        base, merge_base = _git(top, "merge-base", commit, "HEAD").strip(), True
    except ChangedSinceError:
        # no common history here (a shallow clone): comparing with the revision itself runs
        # the tests of its changes too, more than needed but never fewer
        base, merge_base = commit, False
    # the work tree against the base: committed since, staged and unstaged alike; a rename is
    # its two paths
    diff = _git(top, "diff", "--name-only", "--no-renames", "-z", base, "--")
    untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z")
    names = dict.fromkeys(name for name in (diff + untracked).split("\0") if name)
    # git names files from its top level, symbolic links resolved: spell them as the rootdir
    # is spelled, which the import graph's paths are
    real, real_top = Path(os.path.realpath(directory)), Path(os.path.realpath(top))
    files = []
    for name in names:
        path = real_top / name
        inside = real == path or real in path.parents
        files.append(directory / path.relative_to(real) if inside else path)
    return GitChange(ref, base, merge_base, files)


def _git(directory: Path, *args: str, what: str = "") -> str:
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise ChangedSinceError("--changed-since needs git, which is not installed") from None
    if done.returncode != 0:
        if args[0] == "rev-parse" and "--show-toplevel" in args:
            raise ChangedSinceError(
                f"--changed-since needs a git work tree; {directory} is not in one"
            )
        if what:
            raise ChangedSinceError(
                f"--changed-since: {what!r} is not a revision of this repository (a branch, "
                "tag or commit; fetch it first in a clone that lacks it)"
            )
        message = done.stderr.strip() or f"exit code {done.returncode}"
        raise ChangedSinceError(f"--changed-since: git {args[0]} failed: {message}")
    return done.stdout


@dataclasses.dataclass
class ChangeSelection:
    """Which test modules (and directories) a change affects, and why."""

    change: GitChange
    rootdir: Path
    #: Changed files that make every test run, with why (empty: the selection below holds).
    everything: dict[Path, str] = dataclasses.field(default_factory=dict)
    #: Test modules and other test files affected.
    files: set[Path] = dataclasses.field(default_factory=set)
    #: Directories all of whose tests are affected (a conftest's, a --changed-dep's).
    dirs: set[Path] = dataclasses.field(default_factory=set)
    #: Each changed file, and what it selects.
    why: dict[Path, str] = dataclasses.field(default_factory=dict)

    @property
    def all(self) -> bool:
        return bool(self.everything)

    def keeps(self, unit: Unit) -> bool:
        """Whether ``unit`` has a test the change can affect."""
        if self.everything:
            return True
        path = unit_path(unit)
        if path in self.files or any(d == path or d in path.parents for d in self.dirs):
            return True
        if unit.id.endswith("/"):  # tests only pytest sees: a changed file inside selects them
            return any(path in changed.parents for changed in self.change.files)
        return False

    def relative(self, path: Path) -> str:
        return os.path.relpath(path, self.rootdir)

    def to_json(self, units: Sequence[Unit], kept: Sequence[Unit]) -> dict[str, Any]:
        """What ``run_start`` says of the selection (``units``: all the run's, ``kept``: those
        selected)."""
        return {
            "ref": self.change.ref,
            "base": self.change.base,
            "merge_base": self.change.merge_base,
            "changed": {self.relative(path): self.why[path] for path in self.change.files},
            "everything": {self.relative(path): why for path, why in self.everything.items()},
            "modules": len({unit_path(unit) for unit in kept}),
            "of_modules": len({unit_path(unit) for unit in units}),
            "tests": _count(kept),
            "of_tests": _count(units),
        }


def unit_path(unit: Unit) -> Path:
    """The file (or directory) of ``unit``'s tests, absolute."""
    return Path(unit.args[0].partition("::")[0])


def _count(units: Iterable[Unit]) -> int:
    return sum(unit.count if unit.count is not None else len(unit.expected) for unit in units)


def select(
    change: GitChange,
    graph: ImportGraph,
    test_files: Iterable[Path],
    deps: Sequence[tuple[str, Sequence[str]]] = (),
    python_files: Sequence[str] = ("test_*.py", "*_test.py"),
    durations_file: Path | None = None,
) -> ChangeSelection:
    """The tests ``change`` can affect (see the module's docstring for the rules).

    ``graph``: the test modules' imports; ``test_files``: every file the run has tests in
    (modules and others, such as doctest text files), absolute; ``deps``: ``--changed-dep``'s
    globs and the rootdir-relative paths each affects; ``python_files``: pytest's option of
    that name (a deleted file it names was a test module, whose tests are gone);
    ``durations_file``: ``--durations-file``'s, which only balances shards.
    """
    rootdir = graph.rootdir
    test_globs = [_glob(glob) for glob in python_files]
    selection = ChangeSelection(change, rootdir)
    tests = graph.test_modules() | set(test_files)
    patterns = [(_glob(glob), [rootdir / p for p in paths], glob) for glob, paths in deps]
    modules: set[Path] = set()
    for path in change.files:
        relative = os.path.relpath(path, rootdir)
        if rootdir in path.parents and not_source(path, rootdir):
            selection.why[path] = "not a source file (ignored, as by --watch)"
            continue
        if path == durations_file:
            selection.why[path] = "--durations-file: it balances shards, no test reads it"
            continue
        why = []
        for matches, targets, glob in patterns:
            if matches(relative):
                selection.dirs.update(targets)
                why.append(f"--changed-dep {glob}")
        environment = _environment(path)
        if environment and not why:  # what the user said of it stands, not this rule
            selection.everything[path] = environment
        if path.name == "conftest.py" or (
            path.name == "__init__.py" and _above_tests(path.parent, tests)
        ):  # pytest imports it for every test below
            selection.dirs.add(path.parent)
            why.append(f"the tests under {selection.relative(path.parent)}/")
        if path in tests:
            selection.files.add(path)
            why.append("a test file")
        elif path.suffix == ".py" and path.name != "conftest.py":
            modules.add(path)
        selection.why[path] = "; ".join(why)
    if modules:
        reached, conftests = graph.importers(modules)
        # a conftest's imports reach the change: every test pytest finds below it
        selection.dirs.update(conftest.parent for conftest in conftests)
        for path in modules:
            found = reached.get(path, set())
            selection.files |= found
            if found:
                selection.why[path] = "; ".join(
                    filter(None, [selection.why[path], f"imported by {_modules(len(found))}"])
                )
    for path in change.files:
        if not selection.why[path] and not path.exists() and _test_module_name(path, test_globs):
            selection.why[path] = "a test module deleted: its tests are gone"
        if not selection.why[path] and rootdir not in path.parents:
            selection.why[path] = "outside the rootdir, and no test imports it (ignored)"
        if not selection.why[path] and path not in selection.everything:
            selection.everything[path] = (
                "no test is known to depend on it (imports only are followed)"
            )
        if path in selection.everything:
            selection.why[path] = f"every test: {selection.everything[path]}"
    return selection


def _environment(path: Path) -> str | None:
    """Why a change to ``path`` can alter every test's outcome, if it can."""
    if path.name in CONFIG_FILES - {"conftest.py"}:
        return "pytest's or Tach's configuration"
    if path.name in ENVIRONMENT_FILES or _REQUIREMENTS.match(path.name):
        return "the installed packages"
    return None


def _above_tests(directory: Path, tests: Iterable[Path]) -> bool:
    return any(directory in test.parents for test in tests)


def _test_module_name(path: Path, globs: Sequence[Any]) -> bool:
    return path.suffix == ".py" and any(glob(path.name) for glob in globs)


def _modules(count: int) -> str:
    return f"{count} test module{'' if count == 1 else 's'}"


def _glob(pattern: str) -> Any:
    """A matcher of rootdir-relative paths: ``*`` and ``?`` within a name, ``**`` across
    directories; a pattern without ``/`` matches a name in any directory (as ``.gitignore``)."""
    if "/" not in pattern.rstrip("/"):
        pattern = "**/" + pattern
    pattern = pattern.removeprefix("./")
    if pattern.endswith("/"):
        pattern += "**"
    regex = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            regex += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            regex += ".*"
            index += 2
        elif pattern[index] == "*":
            regex += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            regex += "[^/]"
            index += 1
        else:
            regex += re.escape(pattern[index])
            index += 1
    compiled = re.compile(regex + r"\Z")
    return lambda path: compiled.match(path.replace(os.sep, "/")) is not None
