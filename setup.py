"""Builds the compiled modules, the `pyrunc` launcher and the man pages.

- pyrunc._executor (the container init's executor), pyrunc._linux (the runtime's own syscall
  wrappers) and pyrunc._seccomp (filters compiled with libseccomp, kept apart so that hot
  commands never load the library): from the .pyx with Cython when it is installed, else from
  the generated .c files the sdist ships; _executor and _linux are linked with the C helpers of
  pyrunc/csrc they use (declared in pyrunc/csrc/pyrunc.h, pyrunc.pxi for Cython);
- the `pyrunc` command: src/launcher.c, compiled (see its header and docs/packaging.md for why
  not a script); it finds the interpreter and package of the installation it lands in, so a
  wheel is right wherever it is installed;
- man pages for pyrunc and each command, from the CLI's argparse declarations
  (pyrunc/manpages.py), installed under share/man/man8.

Missing build tools (a C compiler, Python's or libseccomp's headers) stop the build with one
line saying what to install, before any compiler output.
"""

import os
import shutil
import sys
import sysconfig
import tempfile

from setuptools import Distribution, Extension, setup
from setuptools.command.build_ext import build_ext

build_scripts = Distribution().get_command_class("build_scripts")  # setuptools' distutils

HERE = os.path.dirname(os.path.abspath(__file__))
PYX = ("_executor", "_linux", "_seccomp")
# the C helpers (pyrunc/csrc, declared in pyrunc.h) each extension is linked with: the init's
# compound steps (init.c) only with the executor
CSRC = os.path.join("pyrunc", "csrc")
CSRC_H = os.path.join(CSRC, "pyrunc.h")
C_HELPERS = {"_executor": ("syscalls.c", "inroot.c", "fdpass.c", "init.c"),
             "_linux": ("syscalls.c", "inroot.c", "fdpass.c")}
INSTALL_HINT = {
    "compiler": "a C compiler (apt-get install gcc; dnf install gcc)",
    "Python.h": "Python's headers (apt-get install python3-dev; dnf install python3-devel)",
    "seccomp.h": "libseccomp's headers (apt-get install libseccomp-dev; "
    "dnf install libseccomp-devel)",
}


def stop(missing: str) -> None:
    sys.stderr.write(f"error: building pyrunc needs {INSTALL_HINT[missing]}\n")
    raise SystemExit(1)


def check_toolchain(compiler) -> None:
    """One clear line for what is missing, instead of pages of compiler errors."""
    from distutils.errors import CompileError

    if not shutil.which(compiler.compiler_so[0]):
        stop("compiler")
    with tempfile.TemporaryDirectory() as tmp:
        for header in ("Python.h", "seccomp.h"):
            src = os.path.join(tmp, f"probe_{header[:-2]}.c")
            with open(src, "w") as f:
                f.write(f"#include <{header}>\nint main(void) {{ return 0; }}\n")
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                saved = os.dup(2)
                os.dup2(devnull, 2)  # the probe's errors are the line below, not gcc's pages
                try:
                    compiler.compile([src], output_dir=tmp,
                                     include_dirs=[sysconfig.get_paths()["include"]])  # fmt: skip
                finally:
                    os.dup2(saved, 2)
                    os.close(saved)
                    os.close(devnull)
            except CompileError:
                stop(header)


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        check_toolchain(self.compiler)
        super().build_extensions()


class BuildLauncher(build_scripts):
    """Compiles src/launcher.c as the `pyrunc` script (build_scripts would copy a file)."""

    def run(self) -> None:
        from distutils.ccompiler import new_compiler
        from distutils.sysconfig import customize_compiler

        compiler = new_compiler()
        customize_compiler(compiler)
        if not shutil.which(compiler.compiler_so[0]):
            stop("compiler")
        macros = [("PY_SHORT", f'"{sys.version_info[0]}.{sys.version_info[1]}"')]
        if self.editable:
            macros.append(("EDITABLE_ROOT", '"' + HERE.replace("\\", "\\\\").replace('"', '\\"')
                           + '"'))  # fmt: skip
        os.makedirs(self.build_dir, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            objects = compiler.compile([os.path.join(HERE, "src", "launcher.c")], output_dir=tmp,
                                       macros=macros, extra_postargs=["-O2", "-Wall"])  # fmt: skip
            compiler.link_executable(objects, "pyrunc", output_dir=self.build_dir,
                                     extra_postargs=["-s"])  # fmt: skip
        os.chmod(os.path.join(self.build_dir, "pyrunc"), 0o755)

    @property
    def editable(self) -> bool:
        return any(c in sys.argv for c in ("editable_wheel", "develop")) or bool(
            os.environ.get("PYRUNC_EDITABLE_BUILD")
        )

    def get_outputs(self) -> list[str]:
        return [os.path.join(self.build_dir, "pyrunc")]


def extensions() -> list[Extension]:
    """From the .pyx with Cython when it is installed; else the generated .c (the sdist)."""
    try:
        from Cython.Build import cythonize
    except ImportError:
        cythonize = None
    # setuptools runs this file with `egg_info` to ask for the build requirements, before
    # Cython is installed: no extension is needed for that
    metadata_only = any(c in sys.argv for c in ("egg_info", "dist_info"))
    exts = []
    for name in PYX:
        c = os.path.join("pyrunc", f"{name}.c")
        pyx = os.path.join("pyrunc", f"{name}.pyx")
        if cythonize is None and not os.path.exists(os.path.join(HERE, c)):
            if metadata_only:  # pip asking what the build needs: Cython, says buildsys/
                return []
            sys.stderr.write("error: building pyrunc from a git checkout needs Cython >= 3.0 "
                             "(pip install Cython), or build from the sdist\n")  # fmt: skip
            raise SystemExit(1)
        libraries = ["seccomp"] if name == "_seccomp" else []
        helpers = [os.path.join(CSRC, f) for f in C_HELPERS.get(name, ())]
        exts.append(Extension(f"pyrunc.{name}", [pyx if cythonize else c] + helpers,
                              include_dirs=[CSRC], depends=helpers + [CSRC_H],
                              libraries=libraries,
                              # the helpers stay private to their extension
                              extra_compile_args=["-O2", "-fvisibility=hidden"]))  # fmt: skip
    if cythonize is None:
        return exts
    write_ops_pxi()
    return cythonize(exts, compiler_directives={"language_level": "3"}, quiet=True)


def write_ops_pxi() -> None:
    """pyrunc/_ops.pxi, the executor's operation codes, from pyrunc/instructions.py (their one
    list), loaded without importing the package (whose __init__ may need the extension)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_pyrunc_instructions", os.path.join(HERE, "pyrunc", "instructions.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.pxi()
    path = os.path.join(HERE, "pyrunc", "_ops.pxi")
    try:
        with open(path) as f:
            if f.read() == text:
                return  # unchanged: no rebuild of _executor for nothing
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(text)


def man_pages() -> list[str]:
    """Written now (setup() needs the file list): pyrunc/manpages.py, on this checkout."""
    sys.path.insert(0, HERE)
    try:
        from pyrunc import manpages
    finally:
        sys.path.remove(HERE)
    return [os.path.relpath(p, HERE) for p in manpages.write(os.path.join(HERE, "build", "man"))]


setup(
    ext_modules=extensions(),
    # a placeholder name: BuildLauncher compiles the real one; the list must be non-empty for
    # setuptools to run build_scripts and install_scripts
    scripts=["src/launcher.c"],
    cmdclass={"build_ext": BuildExt, "build_scripts": BuildLauncher},
    data_files=[("share/man/man8", man_pages())],
)
