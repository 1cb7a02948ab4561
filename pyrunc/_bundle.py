"""pyrunc's own modules loaded from one file (the launcher's import path, issue 19).

A command of the create path imports ~40 of pyrunc's modules. Through the normal import
system each one costs a search of the package's directory, two stats of its source, an open,
fstat, isatty ioctl, lseeks, reads and a close of its .pyc, and importlib's Python-level work
around them. The bundle is one file holding every module's code (marshalled, as in a .pyc)
behind an index: `install()` reads the index once and puts a finder first on sys.meta_path;
a module is then one stat of its source (the same check a .pyc gets: mtime and size), and an
open, fstat, pread and close of the bundle (no fd is held: a command may have only 4). The
modules stay one per concern in the source tree: only the bytecode is bundled.

The bundle sits where the package's bytecode goes (`__pycache__`, or under
PYTHONPYCACHEPREFIX) and is (re)written by the first command that finds it missing or
stale, unless bytecode writing is off (`-B`, PYTHONDONTWRITEBYTECODE): then pyrunc imports
as any package does. A module whose source changed since the bundle was written is never
taken from it. Only the launcher (`pyrunc/_launch.py`) installs it; `python -m pyrunc` and
library users import normally.
"""

import marshal
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # quoted below: this module runs before any other, without __future__
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

_bootstrap = sys.modules["_frozen_importlib"]
_external = sys.modules["_frozen_importlib_external"]

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
STDLIB = ("__future__", "struct")
FORMAT = b"pyrunc-bundle 1 " + sys.implementation.cache_tag.encode() + b"\n"


def bundle_path() -> str:
    """Beside the package's .pyc files (PYTHONPYCACHEPREFIX respected)."""
    init_pyc = _external.cache_from_source(os.path.join(PACKAGE_DIR, "__init__.py"))
    return os.path.join(os.path.dirname(init_pyc), f"bundle.{sys.implementation.cache_tag}.bin")


def _sources() -> list[tuple[str, str, bool]]:
    """(module name, source path, is package) of every module of the package."""
    out = []
    top = os.path.dirname(PACKAGE_DIR)
    for here, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        if "__init__.py" not in files:
            dirs[:] = []
            continue
        package = os.path.relpath(here, top).replace(os.sep, ".")
        for f in sorted(files):
            if not f.endswith(".py"):
                continue
            path = os.path.join(here, f)
            if f == "__init__.py":
                out.append((package, path, True))
            else:
                out.append((f"{package}.{f[:-3]}", path, False))
    # the standard library's source modules the hot commands import (the rest of what they
    # use is built in, frozen, or an extension module)
    stdlib = os.path.dirname(getattr(os, "__file__", None) or "")
    for name in STDLIB:
        path = os.path.join(stdlib, f"{name}.py")
        if stdlib and os.path.isfile(path):
            out.append((name, path, False))
    return out


def _code_bytes(path: str, st: os.stat_result) -> bytes:
    """The marshalled code of a source file: its valid .pyc's, else compiled now."""
    try:
        with open(_external.cache_from_source(path), "rb") as f:
            data = f.read()
        flags = int.from_bytes(data[4:8], "little")
        if (data[:4] == _external.MAGIC_NUMBER and flags == 0
                and int.from_bytes(data[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
                and int.from_bytes(data[12:16], "little") == st.st_size & 0xFFFFFFFF):
            return data[16:]
    except OSError:
        pass
    with open(path, "rb") as f:
        source = f.read()
    return marshal.dumps(compile(source, path, "exec", dont_inherit=True))


def build(path: str | None = None) -> str:
    """Write the bundle of the package as its sources are now (atomically: concurrent
    commands may build it at the same time). Returns its path."""
    path = path or bundle_path()
    index: dict[str, tuple[str, bool, int, int, int, int]] = {}
    blobs = []
    offset = 0
    for name, source, is_pkg in _sources():
        st = os.stat(source)
        code = _code_bytes(source, st)
        index[name] = (source, is_pkg, st.st_mtime_ns, st.st_size, offset, len(code))
        blobs.append(code)
        offset += len(code)
    head = marshal.dumps(index)
    body = FORMAT + len(head).to_bytes(8, "little") + head
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(body)
            for b in blobs:
                f.write(b)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


class BundleFinder:
    """sys.meta_path finder and loader of the bundle's modules."""

    def __init__(self, identity: tuple[int, int, int, int], index: dict, base: int,
                 path: str) -> None:
        self.identity = identity  # the file the index was read from (a rebuild replaces it)
        self.index = index
        self.base = base  # file offset of the first module's code
        self.path = path

    def find_spec(self, name: str, path: "Sequence[str] | None" = None,
                  target: "ModuleType | None" = None) -> "ModuleSpec | None":
        entry = self.index.get(name)
        if entry is None:
            return None
        source, is_pkg, mtime_ns, size = entry[:4]
        try:
            st = os.stat(source)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            refresh(self)  # the normal import takes it; the bundle is rewritten
            return None
        spec = _bootstrap.ModuleSpec(name, self, origin=source, is_package=is_pkg)
        spec.has_location = True
        if is_pkg:
            spec.submodule_search_locations = [os.path.dirname(source)]
        return spec

    def create_module(self, spec: "ModuleSpec") -> None:
        return None

    def exec_module(self, module: "ModuleType") -> None:
        entry = self.index[module.__name__]  # its spec.name (module_from_spec)
        # opened for each module, not held: a command may have as few as 4 fds (runc's)
        data = None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _identity(os.fstat(fd)) == self.identity:
                    data = os.pread(fd, entry[5], self.base + entry[4])
            finally:
                os.close(fd)
        except OSError:
            pass
        if data is not None and len(data) == entry[5]:
            code = marshal.loads(data)
        else:  # rewritten meanwhile by another command: its source (unchanged, checked above)
            with open(entry[0], "rb") as f:
                code = compile(f.read(), entry[0], "exec", dont_inherit=True)
        exec(code, module.__dict__)

    # for linecache and tracebacks: the source is where it always was
    def get_source(self, name: str) -> str | None:
        with open(self.index[name][0], encoding="utf-8") as f:
            return f.read()

    def get_filename(self, name: str) -> str:
        return self.index[name][0]


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _writing_bytecode() -> bool:
    return not sys.dont_write_bytecode


def refresh(finder: BundleFinder | None) -> None:
    """Rewrite a missing or stale bundle, when bytecode may be written (once per process)."""
    global _refreshed
    if _refreshed or not _writing_bytecode():
        return
    _refreshed = True
    try:
        build(finder.path if finder is not None else None)
    except (OSError, SyntaxError, ValueError):
        pass  # a read-only install, a broken source: the normal import says what is wrong


_refreshed = False


def install() -> BundleFinder | None:
    """Read the bundle's index and put its finder first; without a usable bundle, write one
    for the next command (when allowed) and import normally now."""
    path = bundle_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        refresh(None)
        return None
    try:
        identity = _identity(os.fstat(fd))
        head = os.pread(fd, 8192, 0)
        if not head.startswith(FORMAT):
            raise ValueError("another format")
        n = len(FORMAT)
        size = int.from_bytes(head[n:n + 8], "little")
        start = n + 8
        raw = head[start:start + size]
        if len(raw) < size:
            raw += os.pread(fd, size - len(raw), start + len(raw))
        index = marshal.loads(raw)
    except (OSError, ValueError, EOFError, TypeError):
        refresh(None)
        return None
    finally:
        os.close(fd)
    finder = BundleFinder(identity, index, start + size, path)
    sys.meta_path.insert(0, finder)
    return finder


if __name__ == "__main__":
    print(build())
