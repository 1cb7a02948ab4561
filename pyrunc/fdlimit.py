"""The soft RLIMIT_NOFILE raised to the hard limit while `create` and `exec` run.

The runtime needs a dozen fds of its own (the state lock, the init's sockets and pipes, the
namespaces it joins), so a caller's `ulimit -Sn 5` would make it fail where runc works: the Go
runtime raises runc's soft limit the same way (and the launcher, src/launcher.c, does it before
the interpreter starts). As with runc 1.1.5, the container's process inherits the raised limit
unless its config sets RLIMIT_NOFILE. The library's caller gets its own limit back afterwards.
"""

from __future__ import annotations

from pyrunc import syscall

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")


def while_raised(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate an operation that opens fds of its own and starts a container process."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        sys_ = syscall.get()
        caller = sys_.raise_nofile()  # None when already raised (the launcher, an outer call)
        try:
            return fn(*args, **kwargs)
        finally:
            if caller is not None:
                sys_.set_nofile(*caller)

    wrapper.__name__, wrapper.__qualname__ = fn.__name__, fn.__qualname__
    wrapper.__doc__, wrapper.__wrapped__ = fn.__doc__, fn  # type: ignore[attr-defined]
    return wrapper
