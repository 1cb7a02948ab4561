"""pyroute2's rtnetlink part, without the rest of pyroute2's package import.

`import pyroute2` runs a package __init__ that imports every subsystem (NDB, ethtool,
nftables, ipset, conntrack, ...): about half of pyroute2's import time, none of which a
create needs. When pyroute2 is not imported yet, the package is registered with its real
spec but a lazy namespace: submodules load as usual, and the first access to anything else
(`from pyroute2 import NDB` in the caller's program) runs the real __init__ in that same
module, so a library user sees the whole pyroute2 as always.
"""

from __future__ import annotations

import sys


def _install_lazy_package() -> None:
    import importlib
    import importlib.util
    import types

    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed as a package: the plain import reports it
    module = types.ModuleType("pyroute2")
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__path__ = list(spec.submodule_search_locations)
    module.__package__ = "pyroute2"
    module.__loader__ = spec.loader

    def __getattr__(name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return importlib.import_module(f"pyroute2.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"pyroute2.{name}":
                raise
        # not a submodule: a name of the package's own namespace, so run its __init__ now
        del module.__dict__["__getattr__"]
        spec.loader.exec_module(module)
        try:
            return module.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}") from None

    module.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules["pyroute2"] = module


if "pyroute2" not in sys.modules:
    _install_lazy_package()

from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["IPRoute", "NetlinkError"]
