"""Builds the compiled modules: pyrunc._fast (syscalls and the init executor) and pyrunc._seccomp
(filters compiled with libseccomp, kept apart so that hot commands never load the library)."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension("pyrunc._fast", ["pyrunc/_fast.pyx"], extra_compile_args=["-O2"]),
            Extension(
                "pyrunc._seccomp",
                ["pyrunc/_seccomp.pyx"],
                libraries=["seccomp"],
                extra_compile_args=["-O2"],
            ),
        ],
        compiler_directives={"language_level": "3"},
    ),
)
