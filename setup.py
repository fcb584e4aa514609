"""Build the compiled kernels: ext/*.pyx -> algoengine._ext.*.

Environment switches:
  ALGOENGINE_CYTHON_DEBUG=1  bounds/wraparound/initialized checks and line tracing on, -O0 -g
                             (CI runs the unit tests once against this build).
  ALGOENGINE_MARCH=<arch>    target for -march (default "native": the build machine's CPU).
                             Images built for other machines set a portable level, e.g.
                             x86-64-v3 (AVX2 + FMA) or x86-64-v2.
  ALGOENGINE_ANNOTATE=1      write cython -a HTML next to each .pyx (read it for hot loops).
"""

from __future__ import annotations

import os
import platform
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("ALGOENGINE_CYTHON_DEBUG", "") == "1"
ANNOTATE = os.environ.get("ALGOENGINE_ANNOTATE", "") == "1"
MARCH = os.environ.get("ALGOENGINE_MARCH", "native")
IS_X86_64 = platform.machine() in ("x86_64", "AMD64")
IS_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

KERNELS = ["greeks", "orderbook", "risk"]

directives = {
    "language_level": 3,
    "embedsignature": True,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,  # divisors are checked at the Python face
    "linetrace": DEBUG,
    "profile": False,
}

# -ffp-contract=off: no silent a*b+c -> fma contraction, so the vectorized array loops and the
# scalar path round identically (they differ only by libmvec vs libm exp/log, a few ulp).
compile_args = ["-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
link_args = ["-fopenmp"]
macros = [("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")]
if DEBUG:
    compile_args += ["-O0", "-g"]
    macros += [("CYTHON_TRACE_NOGIL", "1")]
else:
    compile_args += ["-O3"]
    # `cdef inline` becomes `static CYTHON_INLINE`; GCC's size heuristics otherwise refuse to
    # inline the per-option kernel into the block loops, and a call in the loop body keeps the
    # loop scalar (measured: "not vectorized: control flow in loop"). Forcing it lets the loops
    # vectorize with libmvec's exp/log.
    macros += [("CYTHON_INLINE", "inline __attribute__((always_inline))")]
    if MARCH:
        compile_args += [f"-march={MARCH}"]
libraries = ["m"]
if IS_X86_64 and IS_GLIBC:
    # SIMD exp/log from glibc's libmvec (see ext/_simd_math.h).
    macros += [("ALGOENGINE_LIBMVEC", "1")]
    libraries = ["mvec", "m"]

extensions = [
    Extension(
        f"algoengine._ext.{name}",
        [f"ext/{name}.pyx"],
        include_dirs=["ext", np.get_include()],
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        libraries=libraries,
    )
    for name in KERNELS
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["ext"],
        compiler_directives=directives,
        annotate=ANNOTATE,
        build_dir="build/cython-debug" if DEBUG else "build/cython",
        nthreads=os.cpu_count() or 1,
    ),
)
