"""pyrunc: an OCI container runtime (a runc clone) you can import.

    import subprocess
    from pyrunc import Runtime, sandbox

    rt = Runtime()                                   # state under /run/pyrunc, as the CLI
    with rt.create("demo", "bundles/busybox", stdout=subprocess.PIPE) as c:
        c.start()
        print(c.stdout.read(), c.wait())

    sandbox.run(["sh", "-c", "echo hi"], rootfs="bundles/busybox/rootfs", timeout=5)

See docs/api.md. Names are imported on first use: `import pyrunc` stays as cheap as the hot
commands need.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc import sandbox as sandbox
    from pyrunc.api import Container as Container
    from pyrunc.api import InterpreterNotProtected as InterpreterNotProtected
    from pyrunc.api import Process as Process
    from pyrunc.api import Runtime as Runtime
    from pyrunc.api import reexec_protected as reexec_protected

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"

__all__ = ["Runtime", "Container", "Process", "InterpreterNotProtected", "reexec_protected",
           "sandbox", "__version__", "SPEC_VERSION"]  # fmt: skip

_API = ("Runtime", "Container", "Process", "InterpreterNotProtected", "reexec_protected")


def __getattr__(name: str) -> object:
    if name in _API:
        from pyrunc import api

        return getattr(api, name)
    if name == "sandbox":
        import importlib

        return importlib.import_module("pyrunc.sandbox")
    raise AttributeError(f"module 'pyrunc' has no attribute {name!r}")
