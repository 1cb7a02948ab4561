"""What the `pyrunc` launcher (src/launcher.c) runs: `python -s -S -P _launch.py SITE ARGS...`.

Without `site` (-S) nothing but the standard library is on sys.path: add the package's own
directory (this file's parent's parent), SITE (where the launcher found the installation's
packages: pyrunc's dependencies are there) and the interpreter's site directories, without
executing any .pth file. PYTHONPATH still comes first, as for any Python program.
"""

import sys

_here = __file__.rpartition("/")[0].rpartition("/")[0]
_site = sys.argv.pop(1)
for _p in (_here, _site):
    if _p not in sys.path:
        sys.path.append(_p)
try:
    import site as _s  # frozen: cheap; with -S it does nothing on import

    for _p in _s.getsitepackages():
        if _p not in sys.path:
            sys.path.append(_p)
    from pyrunc import _bundle  # the package's code from one file (issue 19)

    _bundle.install()
    from pyrunc.cli import run
except ImportError as e:
    sys.stderr.write(f"pyrunc: broken installation: cannot import pyrunc from {_here}: {e}\n")
    raise SystemExit(1) from None
run()
