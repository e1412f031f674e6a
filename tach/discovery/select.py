"""``-k``/``-m``/``--deselect`` selection with pytest's own expression parser.

``_pytest.mark.expression`` compiles an expression into Python code evaluated against a
matcher; it imports no user code. ``-k`` matches substrings (case-insensitive) of the names
pytest's ``KeywordMatcher`` collects: the item's name, its classes, its module file name, the
directories below the rootdir, and its mark names. ``-m`` matches mark names.
"""

from __future__ import annotations

from collections.abc import Callable

from .ini import ConfigError
from .model import TestDef


def compile_expression(expr: str, what: str) -> Callable[[Callable[..., bool]], bool]:
    """Compile ``expr``; a syntax error is a :class:`ConfigError` naming the option."""
    from _pytest.mark import expression

    # pytest 9 raises SyntaxError for a bad expression; pytest 8.4 its own ParseError.
    errors = (SyntaxError, getattr(expression, "ParseError", SyntaxError))
    try:
        compiled = expression.Expression.compile(expr)
    except errors as exc:
        raise ConfigError(f"Wrong expression passed to '{what}': {expr}: {exc}") from exc
    return compiled.evaluate


def keyword_names(test: TestDef) -> set[str]:
    """The names ``-k`` matches against for ``test``."""
    names = set(test.marks)
    parts = test.file.split("/")
    names.update(parts)  # directories below the rootdir and the module file
    names.update(test.classes)
    last = test.id.rpartition("::")[2]
    names.add(last)
    return names


def select(
    tests: list[TestDef], keyword: str | None, markexpr: str | None, deselect: list[str]
) -> tuple[list[TestDef], int]:
    """Tests kept by ``-k``, ``-m`` and ``--deselect`` (in that order), and how many were not."""
    kept = tests
    if keyword and keyword.strip():
        ev = compile_expression(keyword.lstrip(), "-k")
        out = []
        for t in kept:
            if t.dynamic:
                out.append(t)
                continue
            lowered = [n.lower() for n in keyword_names(t)]

            def match(sub: str, /, **kw: object) -> bool:
                if kw:
                    raise ConfigError("Keyword expressions do not support call parameters.")
                s = sub.lower()
                return any(s in n for n in lowered)  # noqa: B023

            if ev(match):
                out.append(t)
        kept = out
    if markexpr:
        ev = compile_expression(markexpr, "-m")
        out = []
        for t in kept:
            marks = set(t.marks)

            def mmatch(name: str, /, **kw: object) -> bool:
                return not kw and name in marks  # noqa: B023

            if ev(mmatch):
                out.append(t)
        kept = out
    if deselect:
        prefixes = tuple(deselect)
        kept = [t for t in kept if not t.id.startswith(prefixes)]
    return kept, len(tests) - len(kept)
