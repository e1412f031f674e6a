"""Build Tach's native core: one small Cython extension per concept in csrc/.

Cythonisation is lazy (only when `build_ext` runs), so `pip install` of a wheel never needs
Cython or a compiler. Build switches, as options of `build_ext` or environment variables:

* ``--cython-always``: regenerate the C files even when they look up to date.
* ``--cython-annotate`` (``TACH_ANNOTATE=1``): write the HTML annotation next to each .pyx.
* ``--cython-directives=a=b,c=d``: extra compiler directives.
* ``TACH_DEBUG=1``: ``-O0 -g``, bounds and wraparound checks on.
* ``TACH_SANITIZE=1``: build with AddressSanitizer and UBSan (run with ASan preloaded).
* ``TACH_COVERAGE=1``: ``linetrace`` so coverage.py can see Cython lines.
* ``TACH_BUILD_ONLY=ring,frame``: build only these modules (a development shortcut for
  ``python setup.py build_ext --inplace``; a wheel always holds all of them).
"""

from __future__ import annotations

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext

NATIVE_MODULES = ("proc", "memfd", "ring", "frame")


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")


class build_ext(_build_ext):
    user_options = [  # noqa: RUF012 - extends the distutils class attribute
        *_build_ext.user_options,
        ("cython-always", None, "run cythonize() even if the .c files are present"),
        ("cython-annotate", None, "produce a colorized HTML version of the Cython source"),
        ("cython-directives=", None, "Cython compiler directives, as a=b,c=d"),
    ]
    boolean_options = [  # noqa: RUF012 - extends the distutils class attribute
        *_build_ext.boolean_options,
        "cython-always",
        "cython-annotate",
    ]

    def initialize_options(self) -> None:
        super().initialize_options()
        self.cython_always = False
        self.cython_annotate = _flag("TACH_ANNOTATE")
        self.cython_directives = None

    def finalize_options(self) -> None:
        from Cython.Build import cythonize

        directives = {
            "language_level": 3,
            "embedsignature": True,
            "boundscheck": _flag("TACH_DEBUG"),
            "wraparound": _flag("TACH_DEBUG"),
            "cdivision": True,
        }
        if self.cython_directives:
            for pair in self.cython_directives.split(","):
                key, _, value = pair.partition("=")
                directives[key.strip()] = value.strip()
        if _flag("TACH_COVERAGE"):
            directives["linetrace"] = True
            for ext in self.distribution.ext_modules:
                ext.define_macros.append(("CYTHON_TRACE", "1"))
                ext.define_macros.append(("CYTHON_TRACE_NOGIL", "1"))

        self.distribution.ext_modules[:] = cythonize(
            self.distribution.ext_modules,
            compiler_directives=directives,
            include_path=["csrc"],
            annotate=self.cython_annotate,
            force=self.cython_always,
        )
        super().finalize_options()


def _extensions() -> list[Extension]:
    compile_args = ["-O0", "-g"] if _flag("TACH_DEBUG") else ["-O2"]
    compile_args += ["-fno-strict-aliasing", "-Wno-unused-function"]
    link_args: list[str] = []
    if _flag("TACH_SANITIZE"):
        compile_args += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
        link_args += ["-fsanitize=address,undefined"]
    return [
        Extension(
            f"tach._native.{name}",
            [f"csrc/{name}.pyx"],
            include_dirs=["csrc/includes"],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            define_macros=[("_GNU_SOURCE", "1")],
        )
        for name in _selected_modules()
    ]


def _selected_modules() -> tuple[str, ...]:
    only = os.environ.get("TACH_BUILD_ONLY", "").strip()
    if not only:
        return NATIVE_MODULES
    chosen = tuple(name.strip() for name in only.split(",") if name.strip())
    unknown = sorted(set(chosen) - set(NATIVE_MODULES))
    if unknown:
        raise SystemExit(f"TACH_BUILD_ONLY names unknown modules {unknown}; known {NATIVE_MODULES}")
    return chosen


setup(ext_modules=_extensions(), cmdclass={"build_ext": build_ext})
