"""Compiled kernels (built from ext/*.pyx by setup.py).

There is no pure-Python fallback (STYLE.md): if a kernel is missing, importing it fails with an
ImportError that says how to build it. :func:`check_build` is what ``algoengine health`` runs.
"""

from __future__ import annotations

import importlib

KERNELS: tuple[str, ...] = ("greeks", "orderbook", "risk")

BUILD_HINT = (
    "the compiled kernels of algoengine are not built. From the source tree run "
    "`pip install -e .` (or `python setup.py build_ext --inplace`); a C compiler is needed, "
    "and Cython and numpy are fetched by the build."
)


def check_build(kernels: tuple[str, ...] | None = None) -> dict[str, str | None]:
    """Try to import every kernel (default: KERNELS).

    Returns {kernel: None if it imports, else the error text}.
    """
    result: dict[str, str | None] = {}
    for name in KERNELS if kernels is None else kernels:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:
            result[name] = f"{type(exc).__name__}: {exc}"
        else:
            result[name] = None
    return result


def load(name: str):  # type: ignore[no-untyped-def]
    """Import a kernel, or raise ImportError naming it and saying how to build."""
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError as exc:
        raise ImportError(f"algoengine._ext.{name}: {exc}; {BUILD_HINT}") from exc
