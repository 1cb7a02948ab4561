"""The build backend: setuptools', asking for Cython only when it is needed.

The sdist ships the C that Cython generated from pyrunc/*.pyx, so building it (offline, on a
fresh machine) needs a C compiler, Python's and libseccomp's headers, setuptools and wheel, but
not Cython; a git checkout has no generated C and so requires Cython.
"""

import os

from setuptools import build_meta as _orig
from setuptools.build_meta import *  # noqa: F401,F403  (the PEP 517 and 660 hooks)

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CYTHON = "Cython>=3.0"


def _needs_cython() -> list[str]:
    generated = all(os.path.exists(os.path.join(_HERE, "pyrunc", f"{m}.c"))
                    for m in ("_executor", "_linux", "_seccomp"))  # fmt: skip
    return [] if generated else [_CYTHON]


def get_requires_for_build_wheel(config_settings=None):
    return _orig.get_requires_for_build_wheel(config_settings) + _needs_cython()


def get_requires_for_build_editable(config_settings=None):
    return _orig.get_requires_for_build_editable(config_settings) + _needs_cython()


def get_requires_for_build_sdist(config_settings=None):
    # the sdist carries the generated C: making it needs Cython
    return _orig.get_requires_for_build_sdist(config_settings) + [_CYTHON]
