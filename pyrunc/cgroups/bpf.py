"""Load a device program (`devices.compile_program`) and attach it to a cgroup2 directory.

cgroup v2 has no devices controller: the kernel asks BPF_PROG_TYPE_CGROUP_DEVICE programs
attached to the cgroup instead. The bpf(2) syscall is reached through ctypes, imported only when
a v2 device list is applied. The attached program stays with the cgroup after our fds are closed
and goes with it on rmdir.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

from pyrunc.errors import PyruncError

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
_SYSCALL = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351,
            "i686": 357, "armv7l": 386}
_LOG_SIZE = 65536


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    nr = _SYSCALL.get(platform.machine())
    if nr is None:
        raise PyruncError(f"bpf: unknown syscall number on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ret = libc.syscall(ctypes.c_long(nr), ctypes.c_long(cmd), attr, ctypes.c_long(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def load_device_program(code: bytes, name: str = "pyrunc_dev") -> int:
    """BPF_PROG_LOAD; returns the program fd. The verifier's log goes into the error."""
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(_LOG_SIZE)
    attr = ctypes.create_string_buffer(72)
    struct.pack_into(
        "<IIQQIIQII16sII", attr, 0,
        BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
        ctypes.addressof(insns), ctypes.addressof(license_),
        1, _LOG_SIZE, ctypes.addressof(log),
        0, 0, name.encode()[:15], 0, 0,
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        detail = log.value.decode(errors="replace").strip().replace("\n", "; ")
        raise PyruncError(
            f"load the cgroup v2 device program: {(e.strerror or str(e)).lower()}"
            + (f" ({detail})" if detail else "")
        ) from None


def attach_device_program(cgroup_dir: str, prog_fd: int) -> None:
    """BPF_PROG_ATTACH (BPF_CGROUP_DEVICE, allow-multi) to the cgroup directory."""
    dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        attr = ctypes.create_string_buffer(20)
        struct.pack_into("<IIIII", attr, 0, dir_fd, prog_fd, BPF_CGROUP_DEVICE,
                         BPF_F_ALLOW_MULTI, 0)
        _bpf(BPF_PROG_ATTACH, attr)
    except OSError as e:
        raise PyruncError(
            f"attach the device program to {cgroup_dir}: {(e.strerror or str(e)).lower()}"
        ) from None
    finally:
        os.close(dir_fd)


def apply_device_program(cgroup_dir: str, code: bytes) -> None:
    fd = load_device_program(code)
    try:
        attach_device_program(cgroup_dir, fd)
    finally:
        os.close(fd)
