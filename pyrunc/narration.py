"""`--debug`: what the runtime is about to have a container process do, in the log.

runc narrates its nsexec stages and init from inside the child; pyrunc's child runs no Python
once it is in the container's namespaces, so the parent says it from the plan it hands over
(each operation's own description, in order: namespaces, mounts, pivot, identity, exec) and
from its own steps (cgroups, hooks, sync points). Imported only when --debug is on.
"""

from __future__ import annotations

from pyrunc import instructions, namespaces

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.instructions import Op
    from pyrunc.log import Logger

_NEW = {flag: kind for kind, flag in namespaces.FLAGS.items()}


def plan(log: Logger, who: str, steps: list[Op], clone_flags: int = 0) -> None:
    """One debug line per operation of `steps` (the child's plan), after the new namespaces."""
    new = [kind for flag, kind in sorted(_NEW.items()) if clone_flags & flag]
    if new:
        log.debug(f"{who}: clone with new {', '.join(new)} namespaces")
    for step in steps:
        desc = step[1]
        if step[0] == instructions.EXEC and step[4]:
            desc = f"{desc} {list(step[4])}"
        log.debug(f"{who}: {desc}")
