"""Builds the one compiled module, pyrunc._fast; everything else is plain Python."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("pyrunc._fast", ["pyrunc/_fast.pyx"], extra_compile_args=["-O2"])],
        compiler_directives={"language_level": "3"},
    ),
)
