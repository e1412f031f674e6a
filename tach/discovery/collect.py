"""Module summaries -> tests and fixtures, as pytest's Module/Class collectors would make them.

This follows ``_pytest/python.py`` (``PyCollector.collect``, ``pytest_pycollect_makeitem``,
``Class.collect``, ``_genfunctions``), ``_pytest/unittest.py`` (``UnitTestCase.collect``) and
``_pytest/fixtures.py`` (``parsefactories``, ``getfuncargnames``). In short:

* A module's names are visited in ``__dict__`` order (first binding), each with its last value.
  Functions matching ``python_functions`` (and not fixtures) become tests; classes matching
  ``python_classes`` (and not abstract, without ``__init__``/``__new__``, ``__test__`` not
  false) are collected; any subclass of ``unittest.TestCase`` is collected whatever its name,
  with the methods ``unittest.TestLoader`` finds (names starting with ``test``, sorted).
  Imported and aliased functions/classes are collected under the name they are bound to.
* In a class, the class's own names and then each base's (MRO order) are visited, and the
  per-class lists are concatenated base first (reverse MRO).
* Marks come from decorators (bottom-up), then class ``pytestmark``/decorators over the MRO
  (base first), then module ``pytestmark``; ``parametrize`` marks expand in that order.

Anything the source does not settle becomes a *dynamic* record with the reason.
"""

from __future__ import annotations

import builtins
import fnmatch
import marshal
import operator
import sys
import types
from typing import Any, NamedTuple

from .model import FixtureDef, TestDef
from .names import Bound, ClassAttr, Ext, Index, ModRef, ModuleCtx, resolve
from .params import HIDDEN, Dynamic, IdOptions, ParamSet, make_ids, parse_argnames

Value = list[Any]

_FIXTURE_DECORATORS = frozenset(
    {
        "pytest.fixture",
        "_pytest.fixtures.fixture",
        "pytest_asyncio.fixture",
        "pytest_asyncio.plugin.fixture",
        "pytest.yield_fixture",
    }
)
_UNITTEST_BASES = frozenset(
    {
        "unittest.TestCase",
        "unittest.case.TestCase",
        "unittest.IsolatedAsyncioTestCase",
        "unittest.async_case.IsolatedAsyncioTestCase",
        "twisted.trial.unittest.TestCase",
        "unittest2.TestCase",
    }
)
_NAMELESS_BUILTINS = frozenset({"object", "set", "frozenset", "tuple", "list", "dict", "bytearray"})
_PATCHERS = frozenset({"patch", "patch.object"})
_BUILTIN_NAMED = frozenset(
    {
        "int",
        "str",
        "float",
        "bytes",
        "bool",
        "list",
        "dict",
        "set",
        "frozenset",
        "tuple",
        "object",
        "type",
        "complex",
        "bytearray",
        "len",
        "repr",
        "print",
        "sorted",
        "reversed",
        "min",
        "max",
        "sum",
        "abs",
        "all",
        "any",
        "iter",
        "next",
        "range",
        "map",
        "filter",
        "zip",
        "enumerate",
        "isinstance",
        "callable",
        "hash",
        "id",
        "ord",
        "chr",
        "open",
        "getattr",
        "setattr",
        "hasattr",
        "Exception",
        "ValueError",
        "TypeError",
        "KeyError",
        "IndexError",
        "RuntimeError",
        "AttributeError",
        "OSError",
        "NotImplementedError",
        "StopIteration",
        "ZeroDivisionError",
        "AssertionError",
        "ImportError",
        "LookupError",
        "ArithmeticError",
        "UnicodeError",
        "UnicodeDecodeError",
        "UnicodeEncodeError",
        "Warning",
        "UserWarning",
        "DeprecationWarning",
        "RuntimeWarning",
        "BaseException",
        "memoryview",
        "slice",
        "property",
        "staticmethod",
        "classmethod",
        "super",
        "vars",
        "dir",
        "format",
        "divmod",
        "pow",
        "round",
        "bin",
        "oct",
        "hex",
        "ascii",
        "input",
        "compile",
        "eval",
        "exec",
    }
)
#: names pytest never hands to pytest_pycollect_makeitem (dunder attributes of modules/classes).
_IGNORED = frozenset(
    dir(type("_E", (), {}))
    + dir(type("_E", (), {})())
    + [
        "__builtins__",
        "__file__",
        "__cached__",
        "__name__",
        "__doc__",
        "__package__",
        "__loader__",
        "__spec__",
        "__path__",
        "__annotations__",
        "__dict__",
        "__weakref__",
        "__module__",
        "__qualname__",
    ]
)


#: decorators from outside the project that leave a test's id alone (they neither
#: parametrize it nor replace it with something else pytest collects differently).
_SAFE_DECORATORS = frozenset(
    {
        "unittest.skip",
        "unittest.skipIf",
        "unittest.skipUnless",
        "unittest.expectedFailure",
        "unittest.case.skip",
        "unittest.case.skipIf",
        "unittest.case.skipUnless",
        "unittest.case.expectedFailure",
        "abc.abstractmethod",
        "typing.no_type_check",
        "typing.overload",
        "typing_extensions.override",
        "typing.override",
    }
)
#: prefixes of such decorators: hypothesis's ``given``/``settings``/``example``/``seed`` run
#: the test many times inside one item; ``mock.patch`` variants are handled separately.
_SAFE_DECORATOR_PREFIXES = (
    "hypothesis.given",
    "hypothesis.settings",
    "hypothesis.example",
    "hypothesis.seed",
    "hypothesis.reproduce_failure",
    "hypothesis.strategies.composite",
    "unittest.mock.patch",
    "mock.patch",
)


#: class decorators that return the class they are given, with its methods as they were.
_SAFE_CLASS_DECORATORS = frozenset(
    {"functools.total_ordering", "typing.final", "typing_extensions.final"}
)


def _foreign_decorator(d: Value, name: str | None, canon: str | None) -> str:
    """Why decorator ``d`` may change a test's ids (see :attr:`FuncInfo.foreign`)."""
    if name is None:
        return "decorated by an expression the source does not settle"
    if canon is not None:
        return f"decorated by {name} ({canon}), defined outside the project"
    return f"decorated by {name}, which is not a pytest mark"


# The records below are plain classes, not dataclasses: ``dataclasses`` writes and compiles
# their methods at import, about a millisecond a class, on every start of ``tach list``.


class Mark(NamedTuple):
    """A mark with the module it was written in (to evaluate its arguments there)."""

    name: str
    args: list[Value]
    kw: dict[str, Value]
    ctx: ModuleCtx


class FuncInfo:
    """What decorators say about a function."""

    __slots__ = (
        "classmethod_",
        "fixture",
        "foreign",
        "given",
        "marks",
        "patches",
        "static",
        "unknown_marks",
    )

    def __init__(self) -> None:
        self.marks: list[Mark] = []
        self.fixture: dict[str, Value] | None = None
        self.static = False
        self.classmethod_ = False
        self.patches = 0
        #: hypothesis's ``@given``: how many positional strategies (they fill the rightmost
        #: arguments) and the names of its keyword strategies; pytest does not see those
        #: arguments (hypothesis hides them from the signature), so they are no fixtures.
        self.given: tuple[int, frozenset[str]] | None = None
        self.unknown_marks: list[str] = []
        #: why a decorator may change the test's ids (it is neither a mark nor known to
        #: leave the test alone: a project's own decorator, another library's), if one does.
        self.foreign: str | None = None


#: what :meth:`Collector.func_info` says of a function without decorators (shared: callers
#: do not modify what it returns).
_UNDECORATED = FuncInfo()


class ClassNode:
    """A resolved class: its binding, module, resolved bases and MRO."""

    __slots__ = (
        "abstract_meta",
        "attrs",
        "binding",
        "ctx",
        "decorated",
        "dynamic",
        "foreign",
        "marks",
        "mro",
        "unittest",
    )

    def __init__(self, ctx: ModuleCtx, binding: dict[str, Any]) -> None:
        self.ctx = ctx
        self.binding = binding
        self.mro: list[ClassNode] = []
        self.unittest = False
        self.dynamic: str | None = None
        self.abstract_meta = False
        #: why the class may be a ``unittest.TestCase`` that the source does not show (a base
        #: from outside the project that is not known not to be one, or not resolvable).
        self.foreign: str | None = None
        #: why, when the class or a base has a decorator that may change its test methods
        #: (parameter ids of its instances, argname+index, do not depend on it).
        self.decorated: str | None = None
        #: name -> (binding, defining class) over the MRO, built on first use.
        self.attrs: dict[str, tuple[dict[str, Any], ClassNode]] | None = None
        #: :meth:`Collector.class_marks`, computed on first use (False: not yet).
        self.marks: Any = False

    @property
    def name(self) -> str:
        return self.binding["name"]  # type: ignore[no-any-return]


#: tags of values that are never callable (pytest collects only callables as tests).
_NOT_CALLABLE = frozenset({"s", "b", "i", "f", "c", "B", "N", "x", "t", "l"})
#: tags :meth:`Collector.value` returns unchanged.
_LITERAL_TAGS = frozenset({"s", "b", "i", "f", "c", "B", "N", "x", "lambda", "?"})


def matches_option(patterns: list[str], name: str) -> bool:
    """``PyCollector._matches_prefix_or_glob_option``."""
    for option in patterns:
        if name.startswith(option):
            return True
        if ("*" in option or "?" in option or "[" in option) and fnmatch.fnmatch(name, option):
            return True
    return False


#: standard-library modules that define ``unittest.TestCase`` subclasses (or are test suites).
_TESTCASE_STDLIB = frozenset({"unittest", "doctest", "test", "idlelib", "lib2to3", "tkinter"})


def never_testcase(canon: str) -> bool:
    """Whether the class named ``canon`` (outside the project) is known not to be a
    ``unittest.TestCase``: a builtin, or a class of the standard library outside the modules
    that define test cases. Any other library's class may be one (``django.test.TestCase``,
    ``somelib.testing.SomeTestCase``), which pytest collects whatever its subclass's name."""
    if "." not in canon:
        return True  # a builtin (``Exception``, ``dict``)
    top = canon.partition(".")[0]
    if canon.startswith("unittest.mock."):
        return True
    return top in _STDLIB and top not in _TESTCASE_STDLIB


_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()))


class _OptionMatcher:
    """:func:`matches_option` for one option list, prepared once (it runs for every name)."""

    __slots__ = ("globs", "prefixes")

    def __init__(self, patterns: list[str]) -> None:
        self.prefixes = tuple(patterns)
        self.globs = [p for p in patterns if "*" in p or "?" in p or "[" in p]

    def __call__(self, name: str) -> bool:
        if name.startswith(self.prefixes):
            return True
        return any(fnmatch.fnmatch(name, g) for g in self.globs) if self.globs else False


class Collector:
    """Collects tests and fixtures from module contexts."""

    def __init__(
        self,
        index: Index,
        *,
        python_classes: list[str],
        python_functions: list[str],
        id_options: IdOptions,
        empty_parameter_set_mark: str = "skip",
        collect_imported_tests: bool = True,
    ) -> None:
        self.index = index
        self.python_classes = python_classes
        self.python_functions = python_functions
        self.is_class_name = _OptionMatcher(python_classes)
        self.is_function_name = _OptionMatcher(python_functions)
        self.id_options = id_options
        self.empty_mark = empty_parameter_set_mark
        self.collect_imported = collect_imported_tests
        self._classes: dict[int, ClassNode] = {}
        self._infos: dict[int, tuple[dict[str, Any], FuncInfo]] = {}
        #: :meth:`literal_key` -> what ``ModuleCollection._parametrize`` made of such a mark
        #: (or the :class:`Dynamic` it raised).
        self.parametrized: dict[tuple[bytes, tuple[str, ...]], Any] = {}

    def classes(self) -> list[ClassNode]:
        """The classes resolved so far."""
        return list(self._classes.values())

    # -- name helpers -------------------------------------------------------------------------

    def canon(self, ctx: ModuleCtx, name: str) -> str | None:
        """The dotted name outside the project that ``name`` refers to, or None."""
        memo = ctx.canons
        if name in memo:
            return memo[name]  # type: ignore[no-any-return]
        got = memo[name] = self._canon(ctx, name)
        return got

    def _canon(self, ctx: ModuleCtx, name: str) -> str | None:
        ref = resolve(self.index, ctx, name)
        if isinstance(ref, Ext):
            return ref.name.removeprefix("builtins.")
        if (
            isinstance(ref, Bound)
            and ref.ctx.rel.startswith("/")
            and ref.binding["k"] in ("func", "class")
        ):
            # an installed library's own definition (pytest's ``fixture`` seen from _pytest),
            # named from the innermost import root that holds it (a project root on the path
            # may hold the environment too)
            path = ref.ctx.path
            inner = [root for root in ref.ctx.roots[1:] if root in path.parents]
            if inner:
                rel = path.relative_to(max(inner, key=lambda root: len(root.parts)))
                mod = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
                return f"{mod}.{ref.binding['name']}"
        return None

    def deref(self, ctx: ModuleCtx, binding: dict[str, Any]) -> tuple[Any, ModuleCtx | None]:
        """Follow import/alias bindings to a project binding or an external name."""
        seen = 0
        while binding["k"] in ("import", "alias") and seen < 20:
            seen += 1
            if binding["k"] == "alias":
                ref = resolve(self.index, ctx, binding["target"])
            else:
                target = self.index.module_of_import(ctx, binding["mod"], binding["level"])
                if target is None:
                    if binding["level"]:
                        return None, None
                    return Ext(f"{binding['mod']}.{binding['name']}"), None
                tctx = self.index.ctx(target)
                if tctx is None:
                    return None, None
                b2 = tctx.ns.get(binding["name"])
                if b2 is None:
                    sub = (
                        self.index.relative_module(tctx, binding["name"], 1)
                        if target.name == "__init__.py"
                        else None
                    )
                    return (
                        ModRef(self.index.ctx(sub)) if sub and self.index.ctx(sub) else None
                    ), None
                ctx, binding = tctx, b2
                continue
            if isinstance(ref, Bound):
                ctx, binding = ref.ctx, ref.binding
                continue
            return ref, None
        return binding, ctx

    # -- values -------------------------------------------------------------------------------

    def value(self, ctx: ModuleCtx, v: Value, depth: int = 0) -> Value:
        """Replace references to literal project constants by their values."""
        tag = v[0]
        if tag in ("t", "l"):
            items = v[1]
            for x in items:
                if x[0] not in _LITERAL_TAGS:
                    break
            else:
                return v  # only literals: nothing to replace (values are never modified)
            # literals stay as they are: no call for them (most elements are literals)
            return [tag, [x if x[0] in _LITERAL_TAGS else self.value(ctx, x, depth) for x in items]]
        if tag == "add":
            left, right = self.value(ctx, v[1], depth), self.value(ctx, v[2], depth)
            if left[0] in ("t", "l") and right[0] == left[0]:
                return [left[0], left[1] + right[1]]
            if left[0] == "s" and right[0] == "s":
                return ["s", left[1] + right[1]]
            return ["?", "non-literal concatenation"]
        if tag == "call":
            canon = self.canon(ctx, v[1])
            if canon == "range" and all(a[0] == "i" for a in v[2]) and not v[3]:
                nums = [int(a[1]) for a in v[2]]
                if len(nums) <= 3 and (len(nums) < 3 or nums[2] != 0):
                    r = range(*nums)
                    if len(r) <= 100000:
                        return ["l", [["i", str(i)] for i in r]]
            if canon in ("pytest.param", "_pytest.mark.param"):
                return ["param", [self.value(ctx, a, depth) for a in v[2]], v[3], ctx]
            if canon in _NAMELESS_BUILTINS:
                # instances of these types have no __name__: the id is argname+index
                return ["x", f"{canon}()"]
            if canon is None and self._nameless_instance(ctx, v[1]):
                return ["x", f"{v[1]}()"]
            return ["?", f"call of {v[1]}()"]
        if tag == "r" and depth < 10:
            ref = resolve(self.index, ctx, v[1])
            if isinstance(ref, Ext):
                name = ref.name
                if name.startswith("builtins."):
                    short = name[len("builtins.") :]
                    if short in ("True", "False", "None"):
                        return {"True": ["B", True], "False": ["B", False], "None": ["N"]}[short]
                    obj = getattr(builtins, short, None)
                    if short in _BUILTIN_NAMED or isinstance(
                        obj, (type, types.BuiltinFunctionType)
                    ):
                        return ["n", getattr(obj, "__name__", short)]
                if name in ("pytest.HIDDEN_PARAM", "_pytest.mark.HIDDEN_PARAM"):
                    return ["hidden"]
                return ["?", f"{v[1]} (defined outside the project)"]
            if isinstance(ref, ClassAttr):
                return ["?", f"{v[1]} is a class attribute"]
            if isinstance(ref, Bound):
                b = ref.binding
                if b["k"] == "value":
                    if b.get("cond") is not None:
                        return ["?", f"{v[1]} is assigned conditionally"]
                    if b.get("mutated") or v[1].partition(".")[0] in ref.ctx.mutated:
                        return ["?", f"{v[1]} is modified after assignment"]
                    return self.value(ref.ctx, b["v"], depth + 1)
                if b["k"] in ("func", "class"):
                    if b["k"] == "func" and self._has_foreign_decorator(ref.ctx, b):
                        return ["?", f"{v[1]} is wrapped by a decorator"]
                    return ["n", b["name"]]
                return ["?", f"{v[1]} is not a literal"]
            if isinstance(ref, ModRef):
                # a module's id is its ``__name__``, the dotted name it was imported under:
                # known for ``import a.b`` (``import a.b as c``), not from how it was reached
                local = ctx.ns.get(v[1])
                if local is not None and local["k"] == "module":
                    return ["n", local["mod"]]
                return ["?", f"{v[1]} is a module reached through other names"]
            return ["?", f"name {v[1]} is not resolvable"]
        return v

    def literal_key(
        self, ctx: ModuleCtx, args: list[Value], kw: dict[str, Value]
    ) -> tuple[bytes, tuple[str, ...]] | None:
        """A key for a call's encoded arguments that holds everything :meth:`value` and
        :meth:`marks_of` find in them, when they are literals, lists and tuples of them, and
        calls of names from outside the project (named by what they resolve to); None when
        they refer to anything else (a name, a project function)."""
        canons: list[str] = []
        for v in (*args, *kw.values()):
            if v[0] not in _LITERAL_TAGS and not self._literal(ctx, v, canons):
                return None
        try:
            # marshal's version 2 writes no back-references, so equal values encode the same
            return marshal.dumps((args, kw), 2), tuple(canons)
        except ValueError:  # a value of a type marshal does not know
            return None

    def _literal(self, ctx: ModuleCtx, v: Value, canons: list[str]) -> bool:
        tag = v[0]
        if tag in _LITERAL_TAGS:
            return True
        if tag == "t" or tag == "l":
            items = v[1]
        elif tag == "call":
            canon = self.canon(ctx, v[1])
            if canon is None:
                return False
            canons.append(canon)
            items = [*v[2], *v[3].values()]
        else:
            return False
        for x in items:
            # literals are most elements: no call for them
            if x[0] not in _LITERAL_TAGS and not self._literal(ctx, x, canons):
                return False
        return True

    def _nameless_instance(self, ctx: ModuleCtx, name: str) -> bool:
        """Whether calling project class ``name`` makes an object without ``__name__``."""
        ref = resolve(self.index, ctx, name)
        if not (isinstance(ref, Bound) and ref.binding["k"] == "class"):
            return False
        cls = self.class_node(ref.ctx, ref.binding)
        if cls.dynamic or cls.unittest or cls.abstract_meta:
            return False
        for special in ("__name__", "__getattr__", "__getattribute__", "__new__"):
            if self.class_attr(cls, special) is not None:
                return False
        return True

    def _has_foreign_decorator(self, ctx: ModuleCtx, b: dict[str, Any]) -> bool:
        for d in b["decos"]:
            name = d[1] if d[0] in ("r", "call") else None
            canon = self.canon(ctx, name) if name else None
            if not canon or not (canon.startswith("pytest.mark.") or canon in _FIXTURE_DECORATORS):
                return True
        return False

    def names_for_ids(self, v: Value) -> str | None:
        """``__name__`` of an evaluated value (see :func:`params.value_id`)."""
        if v[0] == "n":
            return v[1]
        raise Dynamic(f"parameter value is not a literal ({v[1] if len(v) > 1 else v[0]})")

    # -- marks --------------------------------------------------------------------------------

    def marks_of(self, ctx: ModuleCtx, v: Value, depth: int = 0) -> list[Mark] | None:
        """Marks in a decorator, ``pytestmark`` value or ``pytest.param(marks=)``; None: unknown."""
        tag = v[0]
        if tag in ("t", "l"):
            out: list[Mark] = []
            for x in v[1]:
                got = self.marks_of(ctx, x, depth)
                if got is None:
                    return None
                out.extend(got)
            return out
        if tag == "r":
            canon = self.canon(ctx, v[1])
            if canon and canon.startswith(("pytest.mark.", "_pytest.mark.MARK_GEN.")):
                return [Mark(canon.rpartition(".")[2], [], {}, ctx)]
            ref = resolve(self.index, ctx, v[1])
            if isinstance(ref, Bound) and ref.binding["k"] == "value" and depth < 10:
                b = ref.binding
                if (
                    b.get("cond") is not None
                    or b.get("mutated")
                    or v[1].partition(".")[0] in ref.ctx.mutated
                ):
                    return None  # which value the name holds is not settled
                return self.marks_of(ref.ctx, b["v"], depth + 1)
            return None
        if tag == "call":
            canon = self.canon(ctx, v[1])
            if canon and canon.startswith(("pytest.mark.", "_pytest.mark.MARK_GEN.")):
                name = canon.rpartition(".")[2]
                if name == "with_args":
                    return None
                return [Mark(name, v[2], v[3], ctx)]
            return None
        if tag == "add":
            a, b = self.marks_of(ctx, v[1], depth), self.marks_of(ctx, v[2], depth)
            return None if a is None or b is None else a + b
        return None

    def func_info(self, ctx: ModuleCtx, b: dict[str, Any]) -> FuncInfo:
        """What the decorators of function binding ``b`` (defined in ``ctx``) say.

        Remembered per binding (a test module's functions are looked at both as fixtures and
        as tests): callers must not modify the result."""
        got = self._infos.get(id(b))
        if got is not None and got[0] is b:
            return got[1]
        info = self._func_info(ctx, b)
        self._infos[id(b)] = (b, info)
        return info

    def _func_info(self, ctx: ModuleCtx, b: dict[str, Any]) -> FuncInfo:
        if not b["decos"]:
            return _UNDECORATED
        info = FuncInfo()
        for d in reversed(b["decos"]):
            marks = self.marks_of(ctx, d)
            if marks is not None:
                info.marks.extend(marks)
                continue
            name = d[1] if d[0] in ("r", "call") else None
            canon = self.canon(ctx, name) if name else None
            if canon in _FIXTURE_DECORATORS:
                info.fixture = d[3] if d[0] == "call" else {}
            elif canon == "staticmethod":
                info.static = True
            elif canon == "classmethod":
                info.classmethod_ = True
            elif (
                canon
                and d[0] == "call"
                and (canon.endswith((".patch", ".patch.object")) or canon in _PATCHERS)
            ):
                # mock.patch injects an argument unless ``new`` is given (num_mock_patch_args)
                npos = 2 if canon.endswith("object") else 1
                if "new" not in d[3] and len(d[2]) <= npos:
                    info.patches += 1
            elif canon is not None and (
                canon in _SAFE_DECORATORS or canon.startswith(_SAFE_DECORATOR_PREFIXES)
            ):
                if canon == "hypothesis.given" and d[0] == "call":
                    info.given = (len(d[2]), frozenset(d[3]))
            else:
                if name is not None and canon is None and resolve(self.index, ctx, name) is None:
                    info.unknown_marks.append(name)
                if info.foreign is None:
                    info.foreign = _foreign_decorator(d, name, canon)
        return info

    # -- classes ------------------------------------------------------------------------------

    def class_node(self, ctx: ModuleCtx, b: dict[str, Any], depth: int = 0) -> ClassNode:
        key = id(b)
        if key in self._classes:
            return self._classes[key]
        node = ClassNode(ctx, b)
        self._classes[key] = node
        if depth > 30:
            node.dynamic = "class hierarchy too deep"
            node.mro = [node]
            return node
        bases: list[ClassNode] = []
        for bv in b["bases"]:
            if bv[0] != "r":
                node.dynamic = f"base class of {b['name']} is not a plain name"
                node.foreign = node.foreign or node.dynamic
                continue
            ref = resolve(self.index, ctx, bv[1])
            if isinstance(ref, Ext):
                canon = ref.name.removeprefix("builtins.")
                if canon in _UNITTEST_BASES:
                    node.unittest = True
                elif canon in ("object",):
                    pass
                elif canon in ("abc.ABC",):
                    node.abstract_meta = True
                else:
                    node.dynamic = f"base class {bv[1]} is defined outside the project"
                    if not never_testcase(canon):
                        node.foreign = node.foreign or (
                            f"base class {bv[1]} ({canon}) is defined outside the project"
                        )
            elif isinstance(ref, Bound) and ref.binding["k"] == "class":
                base = self.class_node(ref.ctx, ref.binding, depth + 1)
                bases.append(base)
                node.unittest |= base.unittest
                node.abstract_meta |= base.abstract_meta
                if base.dynamic and not node.dynamic:
                    node.dynamic = base.dynamic
                if base.foreign and not node.foreign:
                    node.foreign = base.foreign
                if base.decorated and not node.decorated:
                    node.decorated = base.decorated
            else:
                node.dynamic = f"base class {bv[1]} is not resolvable"
                node.foreign = node.foreign or node.dynamic
        for d in b["decos"]:
            # a class decorator that is not a mark may add, remove or replace test methods
            # (or add ``__init__``, as ``dataclass`` does, which stops pytest collecting it)
            if self.marks_of(ctx, d) is not None:
                continue
            dname = d[1] if d[0] in ("r", "call") else None
            canon = self.canon(ctx, dname) if dname else None
            if canon is not None and (
                canon in _SAFE_DECORATORS
                or canon in _SAFE_CLASS_DECORATORS
                or canon.startswith(_SAFE_DECORATOR_PREFIXES)
            ):
                continue
            if not node.decorated:
                node.decorated = f"class {b['name']} is " + _foreign_decorator(d, dname, canon)
            break
        meta = b["kw"].get("metaclass")
        if meta is not None:
            canon = self.canon(ctx, meta[1]) if meta[0] == "r" else None
            if canon == "abc.ABCMeta":
                node.abstract_meta = True
            elif not node.dynamic:
                node.dynamic = f"class {b['name']} has a custom metaclass"
        node.mro = _c3(node, bases)
        return node

    def class_attr(self, cls: ClassNode, name: str) -> tuple[dict[str, Any], ClassNode] | None:
        """The first binding of ``name`` over the MRO, and the class that binds it."""
        attrs = cls.attrs
        if attrs is None:
            attrs = {}
            for c in cls.mro:
                for n, sub in c.binding["body"]:
                    if n not in attrs:
                        attrs[n] = (sub, c)
            if not cls.mro:
                # still being built (a cyclic hierarchy): do not remember a partial answer
                return attrs.get(name)
            cls.attrs = attrs
        return attrs.get(name)

    def is_abstract(self, cls: ClassNode) -> bool:
        if not cls.abstract_meta:
            return False
        seen: set[str] = set()
        for c in cls.mro:
            for n, sub in c.binding["body"]:
                if n in seen:
                    continue
                seen.add(n)
                if sub["k"] == "func":
                    for d in sub["decos"]:
                        if d[0] == "r" and self.canon(c.ctx, d[1]) in (
                            "abc.abstractmethod",
                            "abc.abstractproperty",
                        ):
                            return True
        return False

    def class_marks(self, cls: ClassNode) -> list[Mark] | None:
        """``get_unpacked_marks(cls, consider_mro=True)``: base classes first.

        The list is shared by every test of the class: callers must not modify it."""
        if cls.marks is False:
            got = self._class_marks(cls)
            if not cls.mro:
                return got
            cls.marks = got
        return cls.marks  # type: ignore[no-any-return]

    def _class_marks(self, cls: ClassNode) -> list[Mark] | None:
        out: list[Mark] = []
        for c in reversed(cls.mro):
            own: list[Mark] = []
            for n, sub in c.binding["body"]:
                if n == "pytestmark":
                    if sub["k"] != "value" and sub["k"] != "alias":
                        return None
                    v = sub["v"] if sub["k"] == "value" else ["r", sub["target"]]
                    got = self.marks_of(c.ctx, v)
                    if got is None:
                        return None
                    own.extend(got)
            for d in reversed(c.binding["decos"]):
                got = self.marks_of(c.ctx, d)
                if got is not None:
                    own.extend(got)
            out.extend(own)
        return out


def _c3(node: ClassNode, bases: list[ClassNode]) -> list[ClassNode]:
    seqs = [list(b.mro) for b in bases] + [list(bases)]
    result = [node]
    while True:
        seqs = [s for s in seqs if s]
        if not seqs:
            return result
        for s in seqs:
            head = s[0]
            if not any(head in t[1:] for t in seqs):
                break
        else:
            node.dynamic = node.dynamic or "inconsistent class hierarchy (MRO)"
            return result
        result.append(head)
        for s in seqs:
            if s and s[0] is head:
                del s[0]


class ModuleResult:
    """What one test module yields."""

    __slots__ = ("fixtures", "tests")

    def __init__(self) -> None:
        self.tests: list[TestDef] = []
        self.fixtures: list[FixtureDef] = []


def _dedup(names: list[str]) -> list[str]:
    """``names`` without repeats, first occurrences kept in order (a new list)."""
    return list(dict.fromkeys(names))


def _usefixtures(marks: list[Mark]) -> tuple[list[str], str | None]:
    """Names in ``usefixtures`` marks, and why they are not all literal (if so)."""
    out: list[str] = []
    dynamic: str | None = None
    for m in marks:
        if m.name == "usefixtures":
            for a in m.args:
                if a[0] == "s":
                    out.append(a[1])
                else:
                    dynamic = dynamic or "usefixtures argument is not a literal"
    return out, dynamic


class _Tail(NamedTuple):
    """What a test inherits from its class chain and module (see ``ModuleCollection._tail``)."""

    classes: tuple[str, ...]
    #: why the class or module marks make the tests dynamic
    dynamic: str | None
    marks: list[Mark]
    names: list[str]
    #: ``names`` without repeats: the marks of a test that has none of its own (shared by
    #: those tests' records, which nothing modifies)
    unique_names: list[str]
    usefixtures: list[str]
    use_dynamic: str | None
    params: list[Mark]
    generate: str | None
    #: the classes themselves, so that the ids in the cache key stay theirs
    keep: list[ClassNode]


class ModuleCollection:
    """Collect one test module (``Module.collect`` and everything below it)."""

    def __init__(
        self, col: Collector, ctx: ModuleCtx, nodeid: str, inherited_dynamic: str | None
    ) -> None:
        self.col = col
        self.ctx = ctx
        self.nodeid = nodeid
        self.result = ModuleResult()
        self.module_dynamic = inherited_dynamic
        s = ctx.summary
        if s.get("skip") and not self.module_dynamic:
            line, what = s["skip"]
            self.module_dynamic = f"module may be skipped at import: {what} (line {line})"
        gen = ctx.ns.get("pytest_generate_tests")
        if gen is not None and not self.module_dynamic:
            self.module_dynamic = (
                f"module defines pytest_generate_tests (line {gen.get('line', 0)})"
            )
        # keyed by the identity of the class chain (one list per class visited, kept alive
        # by the tail), 0 for module-level functions
        self._tails: dict[int, _Tail] = {}
        self.module_marks: list[Mark] | None = []
        #: name -> (line, attribute) of ``name.attribute = ...`` at module level.
        self.attrset: dict[str, list[Any]] = s.get("attrset") or {}
        pm = ctx.ns.get("pytestmark")
        if pm is not None:
            if pm["k"] == "value":
                self.module_marks = col.marks_of(ctx, pm["v"])
            elif pm["k"] == "alias":
                self.module_marks = col.marks_of(ctx, ["r", pm["target"]])
            else:
                self.module_marks = None

    def run(self) -> ModuleResult:
        """Collect the module's tests and fixtures."""
        ctx = self.ctx
        test_attr = ctx.ns.get("__test__")
        if test_attr is not None and test_attr["k"] == "value" and test_attr["v"] == ["B", False]:
            return self.result
        self.result.fixtures.extend(
            self._fixtures_of_namespace(
                [(n, b, ctx) for n, b in ctx.ns.items()], "module", self.nodeid, is_class=False
            )
        )
        star = ctx.summary.get("star")
        if star:
            # the names a star import binds (tests, classes, fixtures) are not in the summary
            module, level, line = star[0]
            self.result.tests.append(
                TestDef(
                    id=self.nodeid,
                    file=ctx.rel,
                    line=line,
                    name="",
                    dynamic=f"from {'.' * level}{module} import * (line {line}): "
                    "the names it binds are not known statically",
                )
            )
        for name in ctx.order:
            if name in _IGNORED:
                continue
            self._item(name, ctx.ns[name], ctx, [], None)
        return self.result

    # -- fixtures -----------------------------------------------------------------------------

    def _fixtures_of_namespace(
        self,
        entries: list[tuple[str, dict[str, Any], ModuleCtx]],
        where: str,
        baseid: str,
        is_class: bool,
    ) -> list[FixtureDef]:
        return fixtures_of_namespace(self.col, entries, where, baseid, is_class)

    # -- items --------------------------------------------------------------------------------

    def _item(
        self,
        name: str,
        binding: dict[str, Any],
        ctx: ModuleCtx,
        classes: list[ClassNode],
        parent_id: str | None,
    ) -> None:
        col = self.col
        parent = parent_id or self.nodeid
        k = binding["k"]
        if k == "import" or k == "alias":
            target, tctx = col.deref(ctx, binding)
        else:  # what ``deref`` returns for any other binding
            target, tctx = binding, ctx
        if isinstance(target, dict) and tctx is not None:
            kind = target["k"]
            attrset = self.attrset.get(name) if not classes else None
            if attrset is not None and kind in ("func", "class"):
                line, attr = attrset
                if attr == "__test__" or col.is_function_name(name) or col.is_class_name(name):
                    self._dynamic(
                        f"{parent}::{name}",
                        target["line"],
                        f"{name}.{attr} is assigned (line {line})",
                        name,
                        classes,
                    )
                return
            if kind == "class":
                cls = col.class_node(tctx, target)
                if cls.unittest:
                    if col.is_abstract(cls):
                        return
                    self._unittest_class(name, cls, classes, parent, binding, target)
                elif col.is_class_name(name) or self._nosetest(cls):
                    if col.is_abstract(cls):
                        return
                    self._class(name, cls, classes, parent, binding, target)
                elif cls.foreign and not self._test_false(cls):
                    # pytest collects a TestCase subclass whatever its name, with the
                    # ``test*`` methods unittest finds: the source cannot say whether it is one
                    self._dynamic(
                        f"{parent}::{name}",
                        target["line"],
                        f"{cls.foreign}: {name} may be a unittest.TestCase",
                        name,
                        classes,
                    )
                return
            if kind == "func":
                if not col.is_function_name(name):
                    return
                info = col.func_info(tctx, target)
                if info.fixture is not None:
                    return
                self._function(name, target, tctx, info, classes, parent, binding)
                return
            if kind == "value":
                if target["v"][0] not in _NOT_CALLABLE and (
                    col.is_function_name(name) or col.is_class_name(name)
                ):
                    # a lambda, or a call's result (``functools.partial(...)``): pytest
                    # collects it when it is callable
                    self._dynamic(
                        f"{parent}::{name}",
                        binding.get("line") or target.get("line") or 1,
                        f"{name} is bound to an expression that may be callable",
                        name,
                        classes,
                    )
                return
            if kind == "other" and (col.is_function_name(name) or col.is_class_name(name)):
                self._dynamic(
                    f"{parent}::{name}",
                    binding.get("line") or 1,
                    f"{name} is bound to a non-literal expression",
                    name,
                    classes,
                )
            return
        if isinstance(target, Ext):
            if col.is_function_name(name) or col.is_class_name(name):
                if target.name in _UNITTEST_BASES:
                    return
                self._dynamic(
                    f"{parent}::{name}",
                    binding.get("line") or 1,
                    f"{name} is imported from {target.name.rpartition('.')[0]}, "
                    "outside the project",
                    name,
                    classes,
                )
            return
        if (
            target is None
            and binding["k"] in ("import", "alias")
            and (col.is_function_name(name) or col.is_class_name(name))
        ):
            self._dynamic(
                f"{parent}::{name}",
                binding.get("line") or 1,
                f"{name} could not be resolved",
                name,
                classes,
            )

    def _test_false(self, cls: ClassNode) -> bool:
        got = self.col.class_attr(cls, "__test__")
        return got is not None and got[0]["k"] == "value" and got[0]["v"] == ["B", False]

    def _nosetest(self, cls: ClassNode) -> bool:
        got = self.col.class_attr(cls, "__test__")
        return got is not None and got[0]["k"] == "value" and got[0]["v"] == ["B", True]

    def _dynamic(
        self, nodeid: str, line: int, reason: str, name: str, classes: list[ClassNode]
    ) -> None:
        self.result.tests.append(
            TestDef(
                id=nodeid,
                file=self.ctx.rel,
                line=line,
                name=name,
                classes=tuple(c.name for c in classes),
                dynamic=reason,
            )
        )

    def _class(
        self,
        name: str,
        cls: ClassNode,
        outer: list[ClassNode],
        parent: str,
        binding: dict[str, Any],
        target: dict[str, Any],
    ) -> None:
        col = self.col
        class_id = f"{parent}::{name}"
        test_attr = col.class_attr(cls, "__test__")
        if (
            test_attr is not None
            and test_attr[0]["k"] == "value"
            and test_attr[0]["v"] == ["B", False]
        ):
            return
        if cls.dynamic or cls.decorated:
            why = cls.dynamic or cls.decorated
            self._dynamic(class_id, target["line"], why, name, outer)
            return
        for special in ("__init__", "__new__"):
            got = col.class_attr(cls, special)
            if got is not None and got[0]["k"] in ("func", "alias", "import", "other", "value"):
                return  # pytest warns "cannot collect test class ... because it has a __init__"
        chain = [*outer, cls]
        self.result.fixtures.extend(self._class_fixtures(cls, class_id))
        seen: set[str] = set()
        per_class: list[list[tuple[str, dict[str, Any], ModuleCtx]]] = []
        for c in [cls, *cls.mro]:
            values = []
            for n, sub in c.binding["body"]:
                if n in _IGNORED or n in seen:
                    continue
                seen.add(n)
                values.append((n, sub, c.ctx))
            per_class.append(values)
        for values in reversed(per_class):
            for n, sub, sctx in values:
                self._item(n, sub, sctx, chain, class_id)

    def _class_fixtures(self, cls: ClassNode, class_id: str) -> list[FixtureDef]:
        entries: list[tuple[str, dict[str, Any], ModuleCtx]] = []
        seen: set[str] = set()
        for c in cls.mro:
            for n, sub in c.binding["body"]:
                if n not in seen:
                    seen.add(n)
                    entries.append((n, sub, c.ctx))
        return self._fixtures_of_namespace(entries, "class", class_id, is_class=True)

    def _unittest_class(
        self,
        name: str,
        cls: ClassNode,
        outer: list[ClassNode],
        parent: str,
        binding: dict[str, Any],
        target: dict[str, Any],
    ) -> None:
        col = self.col
        class_id = f"{parent}::{name}"
        if cls.dynamic or cls.decorated:
            why = cls.dynamic or cls.decorated
            self._dynamic(class_id, target["line"], why, name, outer)
            return
        test_attr = col.class_attr(cls, "__test__")
        if (
            test_attr is not None
            and test_attr[0]["k"] == "value"
            and test_attr[0]["v"] == ["B", False]
        ):
            return
        chain = [*outer, cls]
        self.result.fixtures.extend(self._class_fixtures(cls, class_id))
        members: dict[str, tuple[dict[str, Any], ModuleCtx]] = {}
        for c in reversed(cls.mro):
            for n, sub in c.binding["body"]:
                members[n] = (sub, c.ctx)
        names = sorted(n for n in members if n.startswith("test"))
        found = False
        for n in names:
            sub, sctx = members[n]
            target2, tctx = col.deref(sctx, sub)
            if not (isinstance(target2, dict) and tctx is not None):
                self._dynamic(
                    f"{class_id}::{n}",
                    sub.get("line") or target["line"],
                    f"{n} is not resolvable",
                    n,
                    chain,
                )
                found = True
                continue
            if target2["k"] == "func":
                info = col.func_info(tctx, target2)
                self._function(n, target2, tctx, info, chain, class_id, sub, unittest=True)
                found = True
            elif target2["k"] == "class":
                found = True  # a class is callable too; pytest would make it an item
                self._dynamic(
                    f"{class_id}::{n}",
                    target2["line"],
                    f"{n} is a class attribute that is a class",
                    n,
                    chain,
                )
            elif target2["k"] == "other" or (
                target2["k"] == "value" and target2["v"][0] not in _NOT_CALLABLE
            ):
                found = True
                self._dynamic(
                    f"{class_id}::{n}",
                    sub.get("line") or target["line"],
                    f"{n} is bound to a non-literal expression",
                    n,
                    chain,
                )
        if not found and "runTest" in members:
            sub, sctx = members["runTest"]
            target2, tctx = col.deref(sctx, sub)
            if isinstance(target2, dict) and tctx is not None and target2["k"] == "func":
                self._function(
                    "runTest",
                    target2,
                    tctx,
                    col.func_info(tctx, target2),
                    chain,
                    class_id,
                    sub,
                    unittest=True,
                )

    # -- functions ----------------------------------------------------------------------------

    def _tail(self, classes: list[ClassNode]) -> _Tail:
        """The marks a test inherits from its classes and module (the same for every test of
        a class: computed once per class chain)."""
        key = id(classes) if classes else 0
        got = self._tails.get(key)
        if got is not None:
            return got
        col = self.col
        dynamic: str | None = None
        class_marks: list[Mark] = []
        for cls in reversed(classes):
            cm = col.class_marks(cls)
            if cm is None:
                dynamic = dynamic or f"pytestmark of class {cls.name} is not literal"
                cm = []
            class_marks.extend(cm)
        if self.module_marks is None:
            dynamic = dynamic or "module pytestmark is not literal"
        marks = class_marks + (self.module_marks or [])
        if marks:
            usefixtures, use_dynamic = _usefixtures(marks)
            names = [m.name for m in marks]
            unique_names = _dedup(names)
            params = [m for m in marks if m.name == "parametrize"]
        else:  # the commonest case
            usefixtures, use_dynamic, names, unique_names, params = [], None, [], [], []
        got = _Tail(
            tuple([c.name for c in classes]),
            dynamic,
            marks,
            names,
            unique_names,
            usefixtures,
            use_dynamic,
            params,
            (
                f"class {classes[-1].name} defines pytest_generate_tests"
                if classes and col.class_attr(classes[-1], "pytest_generate_tests") is not None
                else None
            ),
            classes,
        )
        self._tails[key] = got
        return got

    def _function(
        self,
        name: str,
        f: dict[str, Any],
        fctx: ModuleCtx,
        info: FuncInfo,
        classes: list[ClassNode],
        parent: str,
        binding: dict[str, Any],
        unittest: bool = False,
    ) -> None:
        tail = self._tail(classes)
        base_id = f"{parent}::{name}"
        # the first reason found wins, in this order
        dynamic: str | None = self.module_dynamic
        if not dynamic:
            if f.get("cond") is not None:
                dynamic = f"defined under a conditional statement (line {f['cond']})"
            elif binding is not f and binding.get("cond") is not None:
                dynamic = f"bound under a conditional statement (line {binding['cond']})"
            elif f["gen"] and not unittest:
                dynamic = "generator function: pytest reports a collection error"
            elif classes and not unittest and tail.generate:
                dynamic = tail.generate
            elif info.foreign:
                dynamic = info.foreign
        dynamic = dynamic or tail.dynamic
        # argnames (getfuncargnames)
        argnames = f["args"]
        if classes and not info.static and not f["posonly"]:
            argnames = argnames[1:]
        if info.patches:
            argnames = argnames[info.patches :]
        if info.given is not None:
            positional, keywords = info.given
            argnames = argnames[: max(len(argnames) - positional, 0)]
            argnames = [name for name in argnames if name not in keywords]
        # marks in iter_markers order: the function's own, then the tail's
        marks = info.marks
        if marks:
            usefixtures, use_dynamic = _usefixtures(marks)
            dynamic = dynamic or use_dynamic or tail.use_dynamic
            usefixtures += tail.usefixtures
            param_marks = [m for m in marks if m.name == "parametrize"] + tail.params
            own_names = [m.name for m in marks]
            # the marks of a test without parameter marks (shared by such records)
            test_marks = _dedup(own_names + tail.names)
        else:
            dynamic = dynamic or tail.use_dynamic
            usefixtures = tail.usefixtures
            param_marks = tail.params
            own_names = []
            test_marks = tail.unique_names
        file = self.ctx.rel
        def_file = fctx.rel if fctx is not self.ctx else None
        if not param_marks:  # the commonest case: one test
            if unittest:
                fixtures = _dedup(usefixtures)
            else:
                requested = usefixtures + argnames if usefixtures else argnames
                fixtures = _dedup(requested) if len(requested) > 1 else list(requested)
            self.result.tests.append(
                TestDef(
                    base_id,
                    file,
                    f["line"],
                    name,
                    tail.classes,
                    f["async"],
                    test_marks,
                    fixtures,
                    dynamic,
                    def_file,
                    unittest,
                    [],
                )
            )
            return
        direct: list[str] = []
        calls: list[tuple[list[str], list[str]]] = [([], [])]
        argseen: set[str] = set()
        param_dynamic: str | None = None
        for m in param_marks:
            try:
                names, sets, ids, indirect = self._parametrize(m)
            except Dynamic as exc:
                param_dynamic = param_dynamic or f"parametrize: {exc}"
                continue
            if argseen.intersection(names):
                param_dynamic = param_dynamic or "duplicate parametrization (pytest fails)"
                continue
            argseen.update(names)
            for n in names:
                if n not in indirect:
                    direct.append(n)
            new: list[tuple[list[str], list[str]]] = []
            for idl, mk in calls:
                for pid, ps in zip(ids, sets, strict=True):
                    new.append((idl if pid is HIDDEN else [*idl, pid], mk + ps.marks))
            calls = new
        if unittest:
            fixtures = _dedup(usefixtures)
        else:
            requested = usefixtures + argnames if usefixtures else argnames
            if len(requested) > 1:
                requested = _dedup(requested)
            fixtures = [n for n in requested if n not in direct] if direct else list(requested)
        line = f["line"]
        is_async = f["async"]
        classes_t = tail.classes
        dyn = dynamic or param_dynamic
        tests = self.result.tests
        if dyn:
            tests.append(
                TestDef(
                    base_id,
                    file,
                    line,
                    name,
                    classes_t,
                    is_async,
                    test_marks,
                    fixtures,
                    dyn,
                    def_file,
                    unittest,
                    direct,
                )
            )
            return
        for idl, pmarks in calls:
            tests.append(
                TestDef(
                    f"{base_id}[{'-'.join(idl)}]" if idl else base_id,
                    file,
                    line,
                    name,
                    classes_t,
                    is_async,
                    _dedup(own_names + pmarks + tail.names) if pmarks else test_marks,
                    fixtures,
                    None,
                    def_file,
                    unittest,
                    direct,
                )
            )

    def _parametrize(self, m: Mark) -> tuple[list[str], list[ParamSet], list[Any], set[str]]:
        """Argnames, parameter sets, their ids and the indirect argnames of a ``parametrize``
        mark; raises :class:`Dynamic` when the source does not settle them.

        Remembered by content when the mark's arguments name nothing but literals and calls of
        names from outside the project (``pytest.param``), whose meaning is the same in every
        module: the same decorator often stands on many tests. Callers must not modify what
        it returns.
        """
        col = self.col
        key = col.literal_key(m.ctx, m.args, m.kw)
        if key is None:
            return self._parametrize_uncached(m)
        got = col.parametrized.get(key)
        if got is None:
            try:
                got = self._parametrize_uncached(m)
            except Dynamic as exc:
                got = exc
            col.parametrized[key] = got
        if isinstance(got, Dynamic):
            raise Dynamic(*got.args)
        return got

    def _parametrize_uncached(
        self, m: Mark
    ) -> tuple[list[str], list[ParamSet], list[Any], set[str]]:
        col = self.col
        args = m.args
        kw = m.kw
        if "**" in kw:
            raise Dynamic("**kwargs in the mark")
        if args and args[0][0] == "?":
            raise Dynamic("argnames are not literal")
        spec = args[0] if args else kw.get("argnames")
        values = args[1] if len(args) > 1 else kw.get("argvalues")
        if spec is None or values is None:
            raise Dynamic("missing argnames/argvalues")
        if len(args) > 2:
            raise Dynamic("positional arguments after argvalues")
        spec = col.value(m.ctx, spec)
        names, force_tuple = parse_argnames(spec)
        values = col.value(m.ctx, values)
        if values[0] not in ("t", "l"):
            raise Dynamic(f"argvalues are not a literal list ({_why(values)})")
        sets: list[ParamSet] = []
        for item in values[1]:
            if item[0] == "param":
                pargs, pkw, pctx = item[1], item[2], item[3]
                pid: Any = None
                if "id" in pkw:
                    idv = col.value(pctx, pkw["id"])
                    if idv[0] == "s":
                        pid = idv[1]
                    elif idv[0] == "hidden":
                        pid = HIDDEN
                    elif idv[0] != "N":
                        raise Dynamic("pytest.param id is not a literal string")
                pmarks: list[str] = []
                if "marks" in pkw:
                    got = col.marks_of(pctx, pkw["marks"])
                    if got is None:
                        raise Dynamic("pytest.param marks are not literal marks")
                    pmarks = [x.name for x in got]
                    if "usefixtures" in pmarks:
                        raise Dynamic("pytest.param with usefixtures (pytest fails)")
                if "**" in pkw or any(a[0] == "?" and a[1] == "starred argument" for a in pargs):
                    raise Dynamic("pytest.param with unpacked arguments")
                sets.append(ParamSet(pargs, pid, pmarks))
            elif force_tuple:
                sets.append(ParamSet([item]))
            else:
                if item[0] not in ("t", "l"):
                    if len(names) == 1:
                        raise Dynamic("value for a single tuple-style argname is not a sequence")
                    raise Dynamic(f"parameter set is not a literal sequence ({_why(item)})")
                sets.append(ParamSet(item[1]))
        ids_v = kw.get("ids")
        ids: list[Value] | None = None
        if ids_v is not None:
            ids_v = col.value(m.ctx, ids_v)
            if ids_v[0] == "N":
                ids = None
            elif ids_v[0] in ("t", "l"):
                ids = list(ids_v[1])
                if ids and len(ids) != len(sets):
                    raise Dynamic("number of ids differs from parameter sets (pytest fails)")
            else:
                raise Dynamic("ids is a callable or not a literal list")
        indirect_v = kw.get("indirect")
        indirect: set[str] = set()
        if indirect_v is not None:
            indirect_v = col.value(m.ctx, indirect_v)
            if indirect_v[0] == "B":
                indirect = set(names) if indirect_v[1] else set()
            elif indirect_v[0] in ("t", "l") and all(x[0] == "s" for x in indirect_v[1]):
                indirect = {x[1] for x in indirect_v[1]}
            else:
                raise Dynamic("indirect is not literal")
        if not sets:
            if self.col.empty_mark == "fail_at_collect":
                raise Dynamic("empty parameter set with fail_at_collect")
            return (
                names,
                [ParamSet([["N"]] * len(names), "NOTSET", [self.col.empty_mark])],
                ["NOTSET"],
                indirect,
            )
        for ps in sets:
            if ps.id is None and len(ps.values) != len(names):
                raise Dynamic("number of values differs from argnames (pytest fails)")
        made = make_ids(names, sets, ids, self.col.id_options, self.col.names_for_ids)
        return names, sets, made, indirect


def _why(v: Value) -> str:
    if v[0] == "?":
        return str(v[1])
    return {"param": "pytest.param", "n": "a name"}.get(v[0], v[0])


_first = operator.itemgetter(0)


def fixtures_of_namespace(
    col: Collector,
    entries: list[tuple[str, dict[str, Any], ModuleCtx]],
    where: str,
    baseid: str,
    is_class: bool,
    follow_imports: bool = True,
) -> list[FixtureDef]:
    """Fixture functions bound in a namespace (``parsefactories``: names in ``dir()`` order).

    ``follow_imports=False`` considers only functions defined in the namespace itself (used
    for pytest's and plugins' modules, whose imported names are not fixtures they register).
    """
    out: list[FixtureDef] = []
    kinds = ("func", "import", "alias") if follow_imports else ("func",)
    # a fixture is a decorated function, or a name bound to one (sorted after filtering:
    # most names are not fixtures)
    candidates = [
        e for e in entries if e[1]["k"] in kinds and (e[1]["k"] != "func" or e[1]["decos"])
    ]
    for name, binding, ctx in sorted(candidates, key=_first):
        target, tctx = col.deref(ctx, binding)
        if not (isinstance(target, dict) and tctx is not None and target["k"] == "func"):
            continue
        info = col.func_info(tctx, target)
        if info.fixture is None:
            continue
        kw = info.fixture
        fname = name
        if "name" in kw:
            nv = col.value(tctx, kw["name"])
            if nv[0] == "s":
                fname = nv[1]
        scope: str | None = "function"
        if "scope" in kw:
            sv = col.value(tctx, kw["scope"])
            scope = sv[1] if sv[0] == "s" else None
        autouse = False
        if "autouse" in kw:
            av = col.value(tctx, kw["autouse"])
            autouse = bool(av[1]) if av[0] == "B" else False
        deps = list(target["args"])
        if is_class and not info.static and not target["posonly"]:
            deps = deps[1:]
        params: list[str] | None = None
        params_dynamic: str | None = None
        if "params" in kw:
            pv = col.value(tctx, kw["params"])
            try:
                if pv[0] not in ("t", "l"):
                    raise Dynamic(f"params are not a literal list ({_why(pv)})")
                sets = []
                for item in pv[1]:
                    if item[0] == "param":
                        pid = None
                        if "id" in item[2]:
                            idv = col.value(item[3], item[2]["id"])
                            if idv[0] != "s":
                                raise Dynamic("pytest.param id is not a literal")
                            pid = idv[1]
                        if len(item[1]) != 1:
                            raise Dynamic("pytest.param in fixture params takes one value")
                        sets.append(ParamSet([item[1][0]], pid))
                    else:
                        sets.append(ParamSet([item]))
                ids = None
                if "ids" in kw:
                    iv = col.value(tctx, kw["ids"])
                    if iv[0] in ("t", "l"):
                        ids = list(iv[1])
                    elif iv[0] != "N":
                        raise Dynamic("ids is a callable or not literal")
                made = make_ids([fname], sets, ids, col.id_options, col.names_for_ids)
                params = [m if m is not HIDDEN else "" for m in made]
                if not sets:
                    params = []
            except Dynamic as exc:
                params_dynamic = str(exc)
                params = None
        out.append(
            FixtureDef(
                name=fname,
                scope=scope,
                autouse=autouse,
                deps=deps,
                file=tctx.rel,
                line=target["line"],
                where=where,
                baseid=baseid,
                params=params,
                params_dynamic=params_dynamic,
                funcname=target["name"] if fname != name else None,
            )
        )
        if "params" in kw and params is None and params_dynamic is None:
            out[-1].params_dynamic = "params are not literal"
    return out
