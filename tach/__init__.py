"""Tach: run an existing pytest suite from a warm, forking zygote.

The import package is ``tach``; the distribution is ``tach-runner``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
