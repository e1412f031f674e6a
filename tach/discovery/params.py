"""Parametrize ids from literal source, exactly as pytest's ``IdMaker`` makes them.

Input values are the tagged lists of :mod:`tach.discovery.parse`. Anything whose id the source
does not determine raises :class:`Dynamic` with the reason; nothing is guessed.

The rules followed (``_pytest/python.py``: ``IdMaker``, ``Metafunc.parametrize``;
``_pytest/mark/structures.py``: ``ParameterSet``):

* ``argnames`` is a comma-separated string (a trailing comma means tuple-style values) or a
  list/tuple of strings; one name without a trailing comma wraps each value in a 1-tuple.
* An id comes from ``pytest.param(id=)``, else from ``ids=[...]`` at that index (unless None),
  else from the values joined with ``-``: str/bytes ascii-escaped (str longer than 100
  characters falls back to ``argname+index`` under the default ``short`` strategy), numbers,
  None and bools by ``str()``, anything with a ``__name__`` by that name, others
  ``argname+index``.
* Duplicate ids get a counter suffix (``_`` first when the id ends in a digit), skipping
  suffixed ids that already exist.
* An empty argvalues list makes one ``NOTSET`` id.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

Value = list[Any]


class Dynamic(Exception):
    """The source does not determine the ids; the message says why."""


HIDDEN = object()

_NON_PRINTABLE = {i: f"\\x{i:02x}" for i in range(128) if i not in range(32, 127)}
_NON_PRINTABLE.update({ord("\t"): "\\t", ord("\r"): "\\r", ord("\n"): "\\n"})


def ascii_escaped(val: str | bytes) -> str:
    """pytest's ``_pytest.compat.ascii_escaped``."""
    if type(val) is str and val.isascii() and val.isprintable() and "\\" not in val:
        # printable ASCII without backslashes escapes to itself (most ids): skip the codecs
        return val
    if isinstance(val, bytes):
        ret = val.decode("ascii", "backslashreplace")
    else:
        ret = val.encode("unicode_escape").decode("ascii")
    return ret.translate(_NON_PRINTABLE)


# Plain classes, not dataclasses: ``dataclasses`` writes and compiles their methods at import,
# about a millisecond a class, on every start of ``tach list``.


class IdOptions(NamedTuple):
    """The ini options that change parametrize ids."""

    disable_escaping: bool = False
    long_str_strategy: str = "short"
    strict_ids: bool = False


class ParamSet:
    """One parameter set of a parametrize call."""

    __slots__ = ("id", "marks", "values")

    def __init__(self, values: list[Value], id: Any = None, marks: list[str] | None = None) -> None:
        self.values = values
        self.id = id  # str, HIDDEN or None
        self.marks: list[str] = [] if marks is None else marks


def _escaped(val: str | bytes, opts: IdOptions) -> str:
    if opts.disable_escaping and isinstance(val, str):
        return val
    return ascii_escaped(val)


def _py(v: Value) -> object:
    """The Python value of a scalar literal tag."""
    tag = v[0]
    if tag == "s":
        return v[1]
    if tag == "b":
        return bytes.fromhex(v[1])
    if tag == "i":
        return int(v[1])
    if tag == "f":
        return float(v[1])
    if tag == "c":
        return complex(v[1])
    if tag == "B":
        return v[1]
    if tag == "N":
        return None
    raise KeyError(tag)


def value_id(v: Value, opts: IdOptions, names: Callable[[Value], str | None]) -> str | None:
    """``IdMaker._idval_from_value`` for a tagged value; None means "no id from the value".

    ``names`` maps a ``["r", ...]`` reference to the object's ``__name__`` when the source
    determines it, and raises :class:`Dynamic` otherwise.
    """
    tag = v[0]
    if tag in ("s", "b"):
        return _escaped(_py(v), opts)  # type: ignore[arg-type]
    if tag in ("i", "f", "c", "B", "N"):
        return str(_py(v))
    if tag in ("t", "l", "x"):
        return None
    if tag == "lambda":
        return "<lambda>"
    if tag in ("r", "n"):
        return names(v)
    raise Dynamic(f"parameter value is not a literal ({_describe(v)})")


def _describe(v: Value) -> str:
    if v[0] == "?":
        return str(v[1])
    if v[0] == "call":
        return f"call of {v[1]}()"
    if v[0] == "r":
        return f"name {v[1]}"
    return v[0]


def _idval(
    v: Value, argname: str, idx: int, opts: IdOptions, names: Callable[[Value], str | None]
) -> str:
    tag = v[0]
    # the commonest, directly (as value_id would): an int's or a float's literal text is
    # ``str()`` of its value (see ``parse._const``)
    if tag == "i" or tag == "f":
        return v[1]  # type: ignore[no-any-return]
    if tag == "N":
        return "None"
    if tag == "B":
        return "True" if v[1] else "False"
    if tag in ("s", "b"):
        raw = _py(v)
        if len(raw) <= 100 or opts.long_str_strategy == "legacy":  # type: ignore[arg-type]
            return _escaped(raw, opts)  # type: ignore[arg-type]
        if opts.long_str_strategy == "sha256":
            enc = raw.encode("utf-8") if isinstance(raw, str) else raw
            import hashlib

            return hashlib.sha256(enc).hexdigest()  # type: ignore[arg-type]
        if opts.long_str_strategy == "short":
            return f"{argname}{idx}"
        raise Dynamic(f"parametrize_long_str_id_strategy={opts.long_str_strategy}")
    got = value_id(v, opts, names)
    if got is not None:
        return got
    return f"{argname}{idx}"


def parse_argnames(spec: Value) -> tuple[list[str], bool]:
    """``ParameterSet._parse_parametrize_args``: (argnames, force_tuple)."""
    if spec[0] == "s":
        text = spec[1]
        trailing = text.rstrip().endswith(",")
        names = [x.strip() for x in text.split(",") if x.strip()]
        return names, len(names) == 1 and not trailing
    if spec[0] in ("t", "l") and all(x[0] == "s" for x in spec[1]):
        return [x[1] for x in spec[1]], False
    raise Dynamic(f"argnames are not literal ({_describe(spec)})")


def make_ids(
    argnames: list[str],
    sets: list[ParamSet],
    ids: list[Value] | None,
    opts: IdOptions,
    names: Callable[[Value], str | None],
) -> list[Any]:
    """``IdMaker.make_unique_parameterset_ids`` (returns str or :data:`HIDDEN` per set)."""
    resolved: list[Any] = []
    for idx, ps in enumerate(sets):
        if ps.id is not None:
            resolved.append(HIDDEN if ps.id is HIDDEN else _escaped(ps.id, opts))
        elif ids and idx < len(ids) and ids[idx][0] != "N":
            given = ids[idx]
            if given[0] == "r" and given[1] in ("pytest.HIDDEN_PARAM", "HIDDEN_PARAM"):
                resolved.append(HIDDEN)
                continue
            got = value_id(given, opts, names)
            if got is None:
                raise Dynamic(f"ids[{idx}] is not a supported id value (pytest fails)")
            resolved.append(got)
        else:
            if len(ps.values) != len(argnames):
                raise Dynamic("number of values differs from number of argnames (pytest fails)")
            resolved.append(
                "-".join(
                    [
                        _idval(v, n, idx, opts, names)
                        for v, n in zip(ps.values, argnames, strict=True)
                    ]
                )
            )
    if len(resolved) != len(set(resolved)):
        counts = Counter(resolved)
        if opts.strict_ids:
            raise Dynamic("duplicate ids with strict_parametrization_ids (pytest fails)")
        suffixes: dict[Any, int] = defaultdict(int)
        existing = set(resolved)
        for index, rid in enumerate(list(resolved)):
            if counts[rid] > 1:
                if rid is HIDDEN:
                    raise Dynamic("HIDDEN_PARAM used more than once (pytest fails)")
                suffix = "_" if rid and rid[-1].isdigit() else ""
                new = f"{rid}{suffix}{suffixes[rid]}"
                while new in existing:
                    suffixes[rid] += 1
                    new = f"{rid}{suffix}{suffixes[rid]}"
                resolved[index] = new
                existing = set(resolved)
                suffixes[rid] += 1
    return resolved
