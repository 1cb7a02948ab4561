"""The device allow-list: spec rules -> v1 `devices.allow`/`devices.deny` lines, or a v2 eBPF
program, both as plain data so they are unit-tested without root.

The final list, applied in order from a deny-all start (as runc):

1. the rules of `linux.resources.devices`, in their order (so `devices.list` shows them first,
   as crun does);
2. runc's default allowances (below), so that podman's `[{"allow": false, "access": "rwm"}]`
   keeps /dev/null & co usable;
3. the deny rules that came after the last deny-all rule, once more, so an explicit deny still
   wins over a default (runc appends its defaults last, where nothing can override them).

`linux.devices` is not an input (S13): it creates nodes, and access to them is what the rules
above say, as in runc and crun. A client that wants a node usable lists it in
`linux.resources.devices` too (podman and docker do).

v2 has no devices controller: the same list is reduced to what the v1 kernel code would hold (a
default plus exceptions, `Emulator`) and compiled to a BPF_PROG_TYPE_CGROUP_DEVICE program that
answers exactly as the v1 controller would.
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections costs ~1 ms on every create; annotations stay strings
    from collections.abc import Iterable
    from typing import Any

ANY = -1  # `*` for major/minor

# (type, major, minor, access): what runc 1.1.5 allows in every container (read from its
# devices.list): mknod of anything, the standard nodes, /dev/pts/*, /dev/ptmx and /dev/net/tun.
DEFAULT_ALLOWED: tuple[tuple[str, int, int, str], ...] = (
    ("c", ANY, ANY, "m"),
    ("b", ANY, ANY, "m"),
    ("c", 1, 3, "rwm"),  # /dev/null
    ("c", 1, 8, "rwm"),  # /dev/random
    ("c", 1, 7, "rwm"),  # /dev/full
    ("c", 5, 0, "rwm"),  # /dev/tty
    ("c", 1, 5, "rwm"),  # /dev/zero
    ("c", 1, 9, "rwm"),  # /dev/urandom
    ("c", 136, ANY, "rwm"),  # /dev/pts/*
    ("c", 5, 2, "rwm"),  # /dev/ptmx
    ("c", 10, 200, "rwm"),  # /dev/net/tun
)


class Rule:
    """One allow/deny rule; major/minor ANY mean `*`, type `a` means every device."""

    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow: bool, type: str = "a", major: int = ANY, minor: int = ANY,
                 access: str = "rwm") -> None:
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = "".join(c for c in "rwm" if c in access)

    def line(self) -> str:
        """The v1 file syntax: `c 1:3 rwm`, `a *:* rwm`."""
        if self.type == "a":
            return "a *:* rwm" if self.access == "rwm" else f"a *:* {self.access}"
        major = "*" if self.major == ANY else str(self.major)
        minor = "*" if self.minor == ANY else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"

    @property
    def is_all(self) -> bool:
        """Type `a`: the kernel resets the whole list (whatever major/minor/access say)."""
        return self.type == "a"

    def key(self) -> tuple[str, int, int]:
        return (self.type, self.major, self.minor)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and (self.allow, self.line()) == (other.allow, other.line())

    def __repr__(self) -> str:
        return f"Rule({'allow' if self.allow else 'deny'} {self.line()})"


def _field(obj: object, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def from_spec(rule: object) -> Rule:
    """A `LinuxDeviceCgroup` (model object or JSON dict) as a Rule."""
    major = _field(rule, "major")
    minor = _field(rule, "minor")
    return Rule(
        bool(_field(rule, "allow")),
        str(_field(rule, "type") or "a"),
        ANY if major is None else int(major),
        ANY if minor is None else int(minor),
        str(_field(rule, "access") or "rwm"),
    )


def container_rules(resource_rules: Iterable[object]) -> list[Rule]:
    """The ordered rules for a container (see the module docstring), after the deny-all start."""
    user = [r if isinstance(r, Rule) else from_spec(r) for r in resource_rules]
    cut = 0
    for i, r in enumerate(user):
        if r.is_all and not r.allow:
            cut = i + 1
    defaults = [Rule(True, t, ma, mi, acc) for t, ma, mi, acc in DEFAULT_ALLOWED]
    denies = [r for r in user[cut:] if not r.allow]
    return user + defaults + denies


def v1_writes(rules: Iterable[Rule]) -> list[tuple[str, str]]:
    """(file, line) pairs for the v1 devices controller, starting with deny-all."""
    out = [("devices.deny", "a")]
    for r in rules:
        out.append(("devices.allow" if r.allow else "devices.deny", "a" if r.is_all else r.line()))
    return out


# --- what the v1 kernel code would hold: a default and a list of exceptions ---------------------


class Emulator:
    """security/device_cgroup.c's behaviour: writing `a` resets to a default, other lines add
    or remove (exactly matching) exceptions. Used for the v2 program and to predict
    `devices.list` in tests."""

    def __init__(self) -> None:
        self.default_allow = True  # a fresh v1 cgroup under the root allows everything
        self.exceptions: list[Rule] = []

    def apply(self, rule: Rule) -> None:
        if rule.is_all:
            self.default_allow = rule.allow
            self.exceptions = []
            return
        # an allow on a default-deny list (or a deny on a default-allow one) adds an exception;
        # the opposite removes the given access from an exception with the same type:major:minor
        adds = rule.allow != self.default_allow
        for ex in self.exceptions:
            if ex.key() == rule.key():
                if adds:
                    ex.access = "".join(c for c in "rwm" if c in ex.access + rule.access)
                else:
                    ex.access = "".join(c for c in ex.access if c not in rule.access)
                break
        else:
            if adds:
                self.exceptions.append(Rule(not self.default_allow, rule.type, rule.major,
                                            rule.minor, rule.access))
        self.exceptions = [ex for ex in self.exceptions if ex.access]

    def apply_all(self, rules: Iterable[Rule]) -> Emulator:
        for r in rules:
            self.apply(r)
        return self

    def allows(self, type: str, major: int, minor: int, access: str) -> bool:
        """The kernel's check: default deny needs one exception covering all of `access`;
        default allow refuses when any exception overlaps it."""
        for ex in self.exceptions:
            if not _matches(ex, type, major, minor):
                continue
            if self.default_allow and set(access) & set(ex.access):
                return False
            if not self.default_allow and set(access) <= set(ex.access):
                return True
        return self.default_allow

    def list(self) -> list[str]:
        """What devices.list would show."""
        if self.default_allow:
            return ["a *:* rwm"]
        return [ex.line() for ex in self.exceptions]


def _matches(ex: Rule, type: str, major: int, minor: int) -> bool:
    return (
        (ex.type == "a" or ex.type == type)
        and (ex.major == ANY or ex.major == major)
        and (ex.minor == ANY or ex.minor == minor)
    )


# --- the v2 program ------------------------------------------------------------------------------

# struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major; u32 minor; }
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4
_TYPE_CODE = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}
_ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}

# opcodes (linux/bpf_common.h, linux/bpf.h)
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
ALU64_AND_K = 0x57
ALU64_RSH_K = 0x77
ALU64_MOV_X = 0xBF
ALU64_MOV_K = 0xB7
JMP_JNE_K = 0x55
JMP_JEQ_K = 0x15
JMP_JA = 0x05
JMP_EXIT = 0x95

Insn = tuple[int, int, int, int, int]  # (code, dst, src, off, imm)


def access_bits(access: str) -> int:
    return sum(bit for c, bit in _ACCESS_BITS.items() if c in access)


def compile_program(rules: Iterable[Rule]) -> list[Insn]:
    """A BPF_PROG_TYPE_CGROUP_DEVICE program equivalent to the v1 list after `rules` (applied
    from a deny-all start). Registers: r2 type, r3 requested access, r4 major, r5 minor."""
    emu = Emulator()
    emu.apply(Rule(False, "a"))
    emu.apply_all(rules)
    allow_default = 1 if emu.default_allow else 0
    prog: list[Insn] = [
        (LDX_MEM_W, 2, 1, 0, 0),  # r2 = ctx->access_type
        (ALU64_MOV_X, 3, 2, 0, 0),  # r3 = r2
        (ALU64_AND_K, 2, 0, 0, 0xFFFF),  # r2 = type
        (ALU64_RSH_K, 3, 0, 0, 16),  # r3 = access
        (LDX_MEM_W, 4, 1, 4, 0),  # r4 = ctx->major
        (LDX_MEM_W, 5, 1, 8, 0),  # r5 = ctx->minor
    ]
    for ex in emu.exceptions:
        block: list[Insn] = []
        if ex.type != "a":
            block.append((JMP_JNE_K, 2, 0, -1, _TYPE_CODE[ex.type]))
        if ex.major != ANY:
            block.append((JMP_JNE_K, 4, 0, -1, ex.major))
        if ex.minor != ANY:
            block.append((JMP_JNE_K, 5, 0, -1, ex.minor))
        bits = access_bits(ex.access)
        block.append((ALU64_MOV_X, 1, 3, 0, 0))  # r1 = requested access (ctx no longer needed)
        if emu.default_allow:
            # a deny exception: applies when the request overlaps its access
            block.append((ALU64_AND_K, 1, 0, 0, bits))
            block.append((JMP_JEQ_K, 1, 0, -1, 0))
        else:
            # an allow exception: applies when the request is within its access
            block.append((ALU64_AND_K, 1, 0, 0, ~bits & 0x7))
            block.append((JMP_JNE_K, 1, 0, -1, 0))
        block.append((ALU64_MOV_K, 0, 0, 0, 1 - allow_default))
        block.append((JMP_EXIT, 0, 0, 0, 0))
        # every "-1" offset jumps to the next block: past the rest of this one
        for i, (code, dst, src, off, imm) in enumerate(block):
            if off == -1:
                block[i] = (code, dst, src, len(block) - i - 1, imm)
        prog.extend(block)
    prog.append((ALU64_MOV_K, 0, 0, 0, allow_default))
    prog.append((JMP_EXIT, 0, 0, 0, 0))
    return prog


def encode(prog: list[Insn]) -> bytes:
    """struct bpf_insn[]: u8 code, u8 dst:4 | src:4 << 4, s16 off, s32 imm (little endian)."""
    return b"".join(
        struct.pack("<BBhi", code, (dst & 0xF) | (src & 0xF) << 4, off,
                    imm if imm < 2**31 else imm - 2**32)
        for code, dst, src, off, imm in prog
    )


def run_program(prog: list[Insn], type: str, major: int, minor: int, access: str) -> int:
    """Interpret `prog` on one request (only the opcodes `compile_program` emits), so the
    compiled program is checked against `Emulator.allows` without a kernel."""
    regs = [0] * 11
    ctx = ((access_bits(access) << 16) | _TYPE_CODE.get(type, 0), major, minor)
    pc = 0
    mask = 2**64 - 1
    while True:
        code, dst, src, off, imm = prog[pc]
        pc += 1
        if code == LDX_MEM_W:
            regs[dst] = ctx[off // 4]
        elif code == ALU64_MOV_X:
            regs[dst] = regs[src]
        elif code == ALU64_MOV_K:
            regs[dst] = imm & mask
        elif code == ALU64_AND_K:
            regs[dst] &= imm & mask
        elif code == ALU64_RSH_K:
            regs[dst] >>= imm
        elif code == JMP_JNE_K:
            if regs[dst] != imm & mask:
                pc += off
        elif code == JMP_JEQ_K:
            if regs[dst] == imm & mask:
                pc += off
        elif code == JMP_JA:
            pc += off
        elif code == JMP_EXIT:
            return regs[0]
        else:
            raise ValueError(f"unknown opcode {code:#x}")
