"""/proc/self/mountinfo, read once and for all in one place (cgroup layout, the host mounts of a
container without a mount namespace, the tests' clean-up)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


class Mount:
    """One line: the fields pyrunc uses."""

    __slots__ = ("mount_id", "parent_id", "root", "mount_point", "fstype", "superopts")

    def __init__(self, mount_id: int, parent_id: int, root: str, mount_point: str, fstype: str,
                 superopts: str) -> None:  # fmt: skip
        self.mount_id = mount_id
        self.parent_id = parent_id
        self.root = root  # the directory of the filesystem mounted there
        self.mount_point = mount_point
        self.fstype = fstype
        self.superopts = superopts


def unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo (octal)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse(text: str) -> Iterator[Mount]:
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        fstype, _source, superopts = (right.split() + ["", ""])[:3]
        yield Mount(int(fields[0]), int(fields[1]), unescape(fields[3]), unescape(fields[4]),
                    fstype, superopts)  # fmt: skip


def read() -> list[Mount]:
    """This process's mount table."""
    from pyrunc import syscall

    return list(parse(syscall.get().read("/proc/self/mountinfo").decode()))


def top_mount_id(path: str) -> int | None:
    """The id of the mount on top of `path` in this mount namespace, or None if none is there:
    of the mounts at that mount point, the one no other mount there sits on."""
    here = {m.mount_id: m.parent_id for m in read() if m.mount_point == path}
    below = set(here.values())
    tops = [mount_id for mount_id in here if mount_id not in below]
    return tops[-1] if tops else None
