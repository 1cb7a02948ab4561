"""Builds the compiled modules and the `pyrunc` command.

- pyrunc._fast (syscalls and the init executor) and pyrunc._seccomp (filters compiled with
  libseccomp, kept apart so that hot commands never load the library);
- the `pyrunc` launcher (see `launcher()`): a script, not a pip console-script wrapper, so that
  every command starts Python without `site`.
"""

import hashlib
import os
import shlex
import sys
import sysconfig

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))

# Line 2 is both shell and Python: sh runs the `exec`s (the '''' are empty strings to it, the
# rest a comment); Python sees a string literal and goes on to the code below. The first exec
# is the protected interpreter of pyrunc/sealed.py (S1): once it is mounted, create, run and
# exec need no second interpreter.
LAUNCHER = """\
#!/bin/sh
''''[ -x {protected} ] && exec {protected} -s -S -P "$0" "$@"; exec {python} -s -S -P "$0" "$@" #'''
# The pyrunc command, written by pyrunc's setup.py for the interpreter that installed it.
# It runs without `site` (-S): on a typical machine site and the .pth files it executes cost
# 5-25 ms per command, several times runc's whole `state`. The directories site would add for
# pyrunc are written here at install time instead; PYTHONPATH is still honoured.
import sys

sys.path += {paths!r}
try:
    from pyrunc.cli import run
except ImportError:  # the install moved: let site find it
    import site

    site.main()
    from pyrunc.cli import run
run()
"""


def protected_executable(real_executable: str) -> str:
    """The path pyrunc.sealed.protected_executable gives (tests check that they agree)."""
    directory, name = os.path.split(real_executable)
    key = hashlib.sha256(directory.encode()).hexdigest()[:16]
    return f"/run/pyrunc-exe/{key}/{name}"


def launcher() -> list[str]:
    """Write the launcher for this build; pip installs it as is (only `#!python` lines are
    rewritten, and they lose their flags: hence `#!/bin/sh`)."""
    editable = "editable_wheel" in sys.argv or "develop" in sys.argv
    paths = [HERE] if editable else []
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in paths:
            paths.append(path)
    text = LAUNCHER.format(
        python=shlex.quote(sys.executable),
        protected=shlex.quote(protected_executable(os.path.realpath(sys.executable))),
        paths=paths,
    )
    compile(text, "pyrunc launcher", "exec")  # line 2 must stay valid Python
    out = os.path.join("build", "launcher", "pyrunc")
    os.makedirs(os.path.join(HERE, "build", "launcher"), exist_ok=True)
    with open(os.path.join(HERE, out), "w") as f:
        f.write(text)
    os.chmod(os.path.join(HERE, out), 0o755)
    return [out]


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
    scripts=launcher(),
)
