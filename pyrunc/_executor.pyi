"""Types of the `_executor` extension (pyrunc/_executor.pyx) for type checkers; keep in step
(tests/run.sh runs mypy's stubtest against the built module)."""

from pyrunc.instructions import Op

def op_codes() -> dict[str, int]: ...
def handled_codes() -> list[int]: ...
def spawn(
    plan: list[Op],
    clone_flags: int,
    join_pid_fd: int = -1,
    join_time_fd: int = -1,
    time_offsets: bytes | None = None,
    join_user_fd: int = -1,
) -> tuple[int, int]: ...
