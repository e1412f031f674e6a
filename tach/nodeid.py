"""Node ids: parse and format the only test identity that crosses processes.

A node id is pytest's: a rootdir-relative path with ``/`` separators, then ``::``-separated
names (classes, then the function), then optionally ``[params]`` on the last name::

    tests/unit/test_x.py::TestA::TestB::test_f[1-a]

Parsing follows pytest 9's ``_pytest.nodeid.NodeId.parse``: the params bracket is peeled off
the part after the first ``::`` *before* splitting on ``::`` (a parameter id may itself contain
``::``), and a path without ``::`` never has params (``test[1].py`` is a valid file name).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeId:
    """A parsed node id."""

    #: rootdir-relative path with "/" separators.
    path: str
    #: names after the path: classes, then the function.
    names: tuple[str, ...] = ()
    #: contents of the trailing ``[...]``, or None.
    params: str | None = None

    @classmethod
    def parse(cls, nodeid: str) -> NodeId:
        """Split a node id string into path, names and params."""
        path, sep, tail = nodeid.partition("::")
        if not sep:
            return cls(path=path)
        name_part, bracket, param_part = tail.partition("[")
        params = (
            param_part[:-1]
            if bracket and param_part.endswith("]")
            else (param_part if bracket else None)
        )
        return cls(path=path, names=tuple(name_part.split("::")), params=params)

    def __str__(self) -> str:
        return format_nodeid(self.path, self.names, self.params)

    @property
    def function(self) -> str | None:
        """The last name without params (the function), or None for a module id."""
        return self.names[-1] if self.names else None


def format_nodeid(
    path: str, names: tuple[str, ...] | list[str] = (), params: str | None = None
) -> str:
    """Join a path, names and params into pytest's node id string."""
    s = "::".join((path, *names))
    if params is not None:
        s += f"[{params}]"
    return s


def path_to_nodeid(relpath: str) -> str:
    """A filesystem path relative to the rootdir, as the path part of a node id."""
    rel = relpath.replace("\\", "/")
    return "" if rel == "." else rel


def matches_selection(nodeid: str, selector: str) -> bool:
    """Whether ``nodeid`` is selected by a node-id argument such as ``f.py::TestA``.

    pytest matches the names of an argument part by part, and an argument without params
    selects every parametrized variant of the named function.
    """
    if nodeid == selector:
        return True
    sel = NodeId.parse(selector)
    node = NodeId.parse(nodeid)
    if sel.path != node.path:
        return False
    if len(sel.names) > len(node.names):
        return False
    if tuple(node.names[: len(sel.names)]) != sel.names:
        return False
    if sel.params is not None:
        return len(sel.names) == len(node.names) and sel.params == node.params
    return True
