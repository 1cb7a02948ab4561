"""pyrunc: an OCI container runtime (a runc clone) you can import.

    from pyrunc import Runtime
    rt = Runtime("/run/pyrunc")
    rt.create("demo", "bundles/busybox"); rt.start("demo"); print(rt.state("demo"))
"""

from __future__ import annotations

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"

__all__ = ["Runtime", "__version__", "SPEC_VERSION"]


def __getattr__(name: str) -> object:
    # lazy: `import pyrunc` stays as cheap as the hot commands need
    if name == "Runtime":
        from pyrunc.api import Runtime

        return Runtime
    raise AttributeError(name)
