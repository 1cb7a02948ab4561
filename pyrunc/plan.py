"""Compile a validated spec into the init's plan: every decision is taken here, in Python.

The result is a list of plain operations (``pyrunc.instructions``) for the executor
(``pyrunc._executor``) plus the few things the parent itself does while the child waits at a
sync point.
"""

from __future__ import annotations

import os

from pyrunc import capabilities, identity, namespaces, rootfs, syscall
from pyrunc import instructions as ins
from pyrunc.cgroups.layout import read_text
from pyrunc.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyrunc.instructions import Op
    from pyrunc.spec.compiled import Linux, LinuxIDMapping, Process, Spec
    from pyrunc.state import PidlessState

# sync points the child stops at; the parent acts, then answers
SYNC_NAMESPACES = "namespaces"   # uid/gid maps, oom_score_adj, network
SYNC_CGROUP = "cgroup"           # in its cgroups (joined while the init mounted up to here)
SYNC_PRE_PIVOT = "pre-pivot"     # prestart and createRuntime hooks

PROC_SYS = "sys/"  # sysctl paths are relative to the container's procfs root (S14)


class InitPlan:
    """What `create` needs to run the init: the operations and the parent's part."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.clone_flags = 0
        self.ns: namespaces.NamespacePlan | None = None
        self.rootfs = ""
        # (mount index, source) of the bind sources the parent opens and sends at the
        # namespaces sync point, in order
        self.mount_sources: list[tuple[int, str]] = []

    def close(self) -> None:
        if self.ns is not None:
            self.ns.close()


def rootfs_path(spec: Spec, bundle: str) -> str:
    if spec.root is None or not spec.root.path:
        raise ConfigError("config.json: root.path: required property missing")
    path = spec.root.path
    if not os.path.isabs(path):
        path = os.path.join(os.path.realpath(bundle), path)
    path = os.path.normpath(path)
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise ConfigError(f"config.json: root.path: {path}: not a directory")
    if real != path:  # runc refuses a rootfs reached through a symlink
        raise ConfigError(
            "config.json: root.path: invalid rootfs: not an absolute path, or a symlink"
        )
    return path


def emit_stdio(emit: Callable[[Op], object], stdio: tuple[int, int, int] | None) -> None:
    """First of all, the stdio the API asked for onto 0, 1, 2 (the fds are >= 3, so no dup2
    clobbers another's source; the close of inherited fds that follows takes them away)."""
    for target, fd in enumerate(stdio or ()):
        if fd >= 0:
            emit(ins.dup2(fd, target, f"set up fd {target}"))


def compile_plan(
    spec: Spec,
    bundle: str,
    *,
    lock_fd: int,
    fifo_fd: int,
    preserve_fds: int,
    no_pivot: bool = False,
    keyring: str | None = None,
    console_fd: int = -1,
    extra_env: list[str] | None = None,
    idmap_trees: dict[int, int] | None = None,
    container_id: str = "",
    state_root: str | None = None,
    stdio: tuple[int, int, int] | None = None,
    rootless_cgroups: bool = False,
) -> InitPlan:
    """The whole init, from namespaces to execve."""
    linux = spec.linux
    if linux is None:
        raise ConfigError("config.json: linux: required on Linux")
    proc = spec.process
    if proc is None:
        raise ConfigError("config.json: process: required by create")
    plan = InitPlan()
    plan.rootfs = rootfs_path(spec, bundle)
    ns = plan.ns = namespaces.resolve(tuple(linux.namespaces or ()))
    try:
        _validate_namespaces(spec, linux, ns)
        plan.clone_flags = ns.clone_flags
        emit = plan.ops.append
        extend = plan.ops.extend

        emit_stdio(emit, stdio)
        emit(ins.close(lock_fd, "close the lock"))
        # nothing the caller leaked (a shim's socket, a host directory) survives the clone (S2)
        keep = [fifo_fd, console_fd, *ns.join.values(), *(idmap_trees or {}).values()]
        emit(ins.close_others(3 + preserve_fds, [fd for fd in keep if fd >= 0],
                              "close inherited file descriptors"))
        affinity = proc.exec_cpu_affinity
        if affinity is not None and affinity.initial:
            emit(identity.affinity_op(affinity.initial, "initial"))
        for kind in namespaces.JOIN_ORDER:
            if kind in ns.join:
                emit(ins.setns(ns.join[kind], namespaces.FLAGS[kind], f"join {kind} namespace"))
        # an unprivileged parent (and newuidmap) can only open /proc/<init>/uid_map etc. of a
        # dumpable init: dumpable just while the maps are written, before anything of the
        # container exists (as runc's nsexec does), non-dumpable again before any mount
        euid = syscall.get().geteuid()
        rootless_maps = "user" in ns.new and euid != 0
        if rootless_maps:
            emit(ins.dumpable(True, "become dumpable for the id maps"))
        sync_namespaces = ins.sync(SYNC_NAMESPACES)
        emit(sync_namespaces)
        if rootless_maps:
            emit(ins.dumpable(False, "become non-dumpable again"))
        if "user" in ns.new:
            emit(ins.setuser(0, 0, "become root in the user namespace"))
        # The runtime joins the init to its cgroups while the init mounts what needs no
        # cgroup (its rootfs, /proc, /dev, /sys, ...: the first cgroup.procs write waits for an
        # RCU grace period); the init waits for it before the first mount that does (a cgroup
        # filesystem, a device), its devices and the hooks, and only then unshares its cgroup
        # namespace, whose root is the cgroup it is in.
        join_cgroup = [ins.sync(SYNC_CGROUP)]
        if "cgroup" in ns.new:
            join_cgroup.append(ins.unshare(namespaces.CLONE_NEWCGROUP,
                                           "unshare the cgroup namespace"))
        # without a mount namespace the runtime's is inherited (config-linux.md): the mounts
        # land in it and the container is entered with chroot, as runc does
        own_mount_ns = "mount" in ns.kinds

        # the rootfs: "/" private (or slave) so nothing propagates back to the host
        propagation = linux.rootfs_propagation or ""
        root_prop = rootfs.MS_REC | (
            rootfs.MS_SLAVE if propagation in ("slave", "rslave") else rootfs.MS_PRIVATE
        )
        if own_mount_ns:
            emit(ins.set_propagation("/", root_prop, "make / private"))
        emit(ins.mount(plan.rootfs, plan.rootfs, rootfs.MS_BIND | rootfs.MS_REC, ins.TGT_ABSOLUTE,
                       f"bind mount the rootfs {plan.rootfs}"))
        emit(ins.root(plan.rootfs, "open the rootfs"))

        mounts = tuple(spec.mounts or ())
        cgroup_mounts = None
        if any(m.type == "cgroup" for m in mounts):
            from pyrunc.cgroups.setup import container_path

            cgroup_mounts = rootfs.CgroupMounts.from_host(
                "cgroup" in ns.new,
                container_path(spec, container_id, state_root, rootless_cgroups),
            )
        # bind sources the runtime opens for the init (a new user namespace may not reach
        # them, runc does the same), received right after the namespaces sync point
        sources: list[tuple[int, str]] | None = (
            [] if "user" in ns.new and "mount" in ns.new and euid == 0 else None
        )
        first = next((i for i, m in enumerate(mounts) if rootfs.needs_cgroup(m)), None)
        extend(rootfs.mount_ops(mounts, bundle, cgroup_mounts, idmap_trees, sources,
                                before=None if first is None else {first: join_cgroup}))
        if first is None:
            extend(join_cgroup)
        if sources:
            plan.ops.insert(plan.ops.index(sync_namespaces) + 1,
                            ins.recv_sources(len(sources), "receive the bind mount sources"))
            plan.mount_sources = sources
        # mknod needs host root: inside any user namespace (the container's, or the one the
        # runtime itself runs in, as under rootless podman) the host's nodes are bound (runc)
        from pyrunc.rootless import in_user_namespace

        bind_devices = "user" in ns.kinds or in_user_namespace()
        if rootfs.mounts_dev(mounts):
            extend(rootfs.device_ops(tuple(linux.devices or ()), True, bind_devices))
            extend(rootfs.dev_link_ops())
        elif linux.devices:
            extend(rootfs.device_ops(tuple(linux.devices), False, bind_devices))
        emit(ins.chdir(proc.cwd, ins.CHDIR_PLAIN, f"create cwd {proc.cwd}"))
        # an unprivileged runtime can only open the namespaces of a dumpable init: dumpable
        # while createContainer hooks join them (no process of the container exists yet)
        hook_join = (euid != 0 and spec.hooks is not None
                     and bool(spec.hooks.create_container))
        if hook_join:
            emit(ins.dumpable(True, "become dumpable for createContainer hooks"))
        emit(ins.sync(SYNC_PRE_PIVOT))
        if hook_join:
            emit(ins.dumpable(False, "become non-dumpable again"))
        if not own_mount_ns:
            emit(ins.pivot(plan.rootfs, ins.PIVOT_CHROOT, "chroot to the rootfs"))
        else:
            if no_pivot and "mount" in ns.new:
                # a joined mount namespace is someone else's: nothing of it is taken away
                extend(rootfs.hide_full_mounts_ops(plan.rootfs))
            if no_pivot:
                emit(ins.pivot(plan.rootfs, ins.PIVOT_MOVE, "move the rootfs to /"))
            else:
                emit(ins.pivot(plan.rootfs, ins.PIVOT_ROOT, "pivot_root"))
        if own_mount_ns and propagation in ("shared", "rshared", "unbindable", "runbindable"):
            emit(ins.set_propagation("/", rootfs.PROPAGATION[propagation],
                                     f"set rootfs propagation {propagation}"))

        if spec.hostname is not None:
            emit(ins.hostname(spec.hostname))
        if spec.domainname is not None:
            emit(ins.domainname(spec.domainname))
        if "network" in ns.new:
            emit(ins.loopback())
        for key, value in sorted((linux.sysctl or {}).items()):
            # written through an fd resolved beneath the container's verified procfs root,
            # crossing no mount and following no symlink (S14, see do_write_proc)
            emit(ins.write_proc(sysctl_path(key), value, f"write sysctl {key}"))
        # the container's /dev/null: what masked files are bound to, and what stdio given on a
        # /dev/null (the host's) is reopened as
        emit(ins.open_devnull(ins.DEVNULL_REQUIRED if linux.masked_paths else ins.DEVNULL_OPTIONAL,
                              "open /dev/null in the container"))
        for path in linux.masked_paths or ():
            emit(ins.mask(path))
        for path in linux.readonly_paths or ():
            emit(ins.readonly(path))
        # read-only at last, once the console has its /dev/console (runc's finalizeRootfs)
        finalize = rootfs.readonly_remount_ops(mounts)
        if spec.root.readonly:
            finalize.append(ins.remount_root(rootfs.MS_RDONLY | rootfs.MS_REC,
                                             "remount / read-only"))

        seccomp = seccomp_op(linux)
        setgroups = (None if identity.keeps_original_groups(spec.annotations)
                     else _setgroups_allowed(linux, ns))
        extend(process_ops(proc, linux, console_fd, keyring, preserve_fds, seccomp, finalize,
                           setgroups=setgroups))
        if seccomp is not None and proc.no_new_privileges and seccomp_notifies(seccomp):
            emit(seccomp)  # the notify fd must reach the runtime before `create` returns
        emit(ins.ready())
        emit(ins.wait_start(fifo_fd))
        if seccomp is not None and proc.no_new_privileges and not seccomp_notifies(seccomp):
            emit(seccomp)  # the last step before execve
        envp = identity.environment(proc, plan.rootfs) + (extra_env or [])
        start_hooks = spec.hooks.start_container if spec.hooks is not None else ()
        if start_hooks:
            from pyrunc import hooks
            from pyrunc.state import OCI_VERSION

            state: PidlessState = {
                "ociVersion": spec.oci_version or OCI_VERSION, "id": container_id,
                "status": "created", "bundle": bundle,
            }
            if spec.annotations:
                state["annotations"] = dict(spec.annotations)
            extend(hooks.start_container_ops([hooks.hook_dict(h) for h in start_hooks], state,
                                             envp))
        emit(ins.execve(list(proc.args), envp))
    except BaseException:
        plan.close()
        raise
    return plan


def seccomp_op(linux: Linux) -> Op | None:
    if linux.seccomp is None:
        return None
    from pyrunc.seccomp import compile_seccomp

    program, flags = compile_seccomp(linux.seccomp)
    return ins.seccomp(program, flags)


def seccomp_notifies(seccomp: Op) -> bool:
    from pyrunc.seccomp import SECCOMP_FILTER_FLAG_NEW_LISTENER

    return bool(seccomp[2][0] & SECCOMP_FILTER_FLAG_NEW_LISTENER)  # a: the filter's flags


def _setgroups_allowed(linux: Linux, ns: namespaces.NamespacePlan) -> bool:
    """False when the init's new user namespace will have setgroups denied: an unprivileged
    caller mapping only its own gid writes gid_map itself (pyrunc.rootless.write_id_maps)."""
    sys_ = syscall.get()
    if "user" not in ns.new or sys_.geteuid() == 0:
        return True
    gids = tuple(linux.gid_mappings or ())
    return not (len(gids) == 1 and gids[0].size == 1 and gids[0].host_id == sys_.getegid())


def process_ops(
    proc: Process,
    linux: Linux,
    console_fd: int,
    keyring: str | None,
    preserve_fds: int,
    seccomp_op: Op | None = None,
    finalize: list[Op] | None = None,
    setgroups: bool | None = True,
) -> list[Op]:
    """From setsid to the executable lookup: shared by the init and by `exec`.

    `finalize` (the init's read-only remounts) comes right after the console is set up.
    `setgroups` is False in a user namespace whose setgroups is denied (a rootless caller's
    own gid map), None to keep the caller's groups (identity.keeps_original_groups)."""
    out = [ins.setsid()]
    if proc.terminal:
        size = proc.console_size
        out.append(ins.console(console_fd, size.height if size else 0, size.width if size else 0))
    out += finalize or ()
    if keyring:
        out.append(ins.keyring(keyring))
    out += identity.rlimit_ops(tuple(proc.rlimits or ()))
    out += identity.scheduling_ops(proc)
    if proc.no_new_privileges:
        out.append(ins.no_new_privs())
    elif seccomp_op is not None:
        # without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before the drop (runc)
        out.append(seccomp_op)
    out += identity.identity_ops(proc, capabilities.last_cap(), setgroups)
    out += identity.exec_ops(proc)
    out += identity.late_ops(proc, linux)
    out.append(ins.cloexec_from(3 + preserve_fds, "close file descriptors"))
    return out


def check_host_features(spec: Spec) -> list[str]:
    """Refuse what this host cannot do; return warnings for what is skipped (as crun does)."""
    warnings: list[str] = []
    proc, linux = spec.process, spec.linux
    if linux is None:
        raise ConfigError("config.json: linux: required on Linux")
    if proc is not None and proc.apparmor_profile:
        if not read_text("/sys/module/apparmor/parameters/enabled").startswith("Y"):
            raise ConfigError(
                "config.json: process.apparmorProfile: AppArmor is not enabled on this host"
            )
        raise ConfigError("config.json: process.apparmorProfile: AppArmor is not supported yet")
    selinux = syscall.get().exists("/sys/fs/selinux/enforce")
    for field, value in (("process.selinuxLabel", proc.selinux_label if proc else None),
                         ("linux.mountLabel", linux.mount_label)):
        if value:
            if selinux:
                raise ConfigError(f"config.json: {field}: SELinux labels are not supported yet")
            warnings.append(f"{field} skipped: SELinux is not enabled on this host")
    if linux.intel_rdt is not None and not _is_mounted("resctrl"):
        raise ConfigError("config.json: linux.intelRdt: resctrl is not mounted on this host")
    return warnings


def idmap_trees(spec: Spec, bundle: str) -> dict[int, int]:
    """A detached idmapped mount tree for each idmapped mount, by index (the caller closes them).

    `rbind` decides whether submounts come along, `ridmap` whether they are mapped too.
    """
    sys_ = syscall.get()
    linux = spec.linux
    if linux is None:
        raise ConfigError("config.json: linux: required on Linux")
    out: dict[int, int] = {}
    try:
        for i, m in enumerate(spec.mounts or ()):
            opts = rootfs.MountOptions(m.options)
            if not (opts.idmap or m.uid_mappings or m.gid_mappings):
                continue
            if not (opts.is_bind or m.type == "bind"):
                raise ConfigError(f"config.json: mounts[{i}]: idmapped mounts must be bind mounts")
            uids = m.uid_mappings or linux.uid_mappings
            gids = m.gid_mappings or linux.gid_mappings
            if not uids or not gids:
                raise ConfigError(
                    f"config.json: mounts[{i}]: idmap needs uidMappings and gidMappings "
                    "(on the mount or for a user namespace)"
                )
            source = m.source or ""
            if not os.path.isabs(source):
                source = os.path.join(bundle, source)
            userns = namespaces.mapped_userns(_id_map(uids), _id_map(gids))
            try:
                recursive_tree = bool(opts.flags & rootfs.MS_REC)
                out[i] = sys_.idmapped_tree(
                    source, userns, recursive_tree, opts.idmap == "ridmap"
                )
            except OSError as e:
                raise ConfigError(f"config.json: mounts[{i}]: idmapped mount of {source}: "
                                  f"{e.strerror or e}") from None
            finally:
                os.close(userns)
    except BaseException:
        for fd in out.values():
            sys_.close(fd)
        raise
    return out


def _id_map(mappings: tuple[LinuxIDMapping, ...]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def _is_mounted(fstype: str) -> bool:
    return any(line.split()[2] == fstype for line in read_text("/proc/self/mounts").splitlines())


def time_offsets(linux: Linux) -> bytes | None:
    """The timens_offsets text of a new time namespace."""
    if not linux.time_offsets:
        return None
    lines = [f"{clock} {off.secs or 0} {off.nanosecs or 0}\n"
             for clock, off in sorted(linux.time_offsets.items())]
    return "".join(lines).encode()


def _validate_namespaces(spec: Spec, linux: Linux, ns: namespaces.NamespacePlan) -> None:
    if spec.hostname and not _own_namespace(ns, "uts"):
        raise ConfigError("config.json: hostname: setting it requires a uts namespace of its own")
    if linux.time_offsets and "time" not in ns.new:
        raise ConfigError("config.json: linux.timeOffsets: needs a new time namespace")
    if spec.domainname and not _own_namespace(ns, "uts"):
        raise ConfigError(
            "config.json: domainname: setting it requires a uts namespace of its own"
        )
    for key in linux.sysctl or {}:
        if key == "kernel.hostname":
            raise ConfigError(f"config.json: linux.sysctl.{key}: not allowed, as it conflicts "
                              "with the OCI \"hostname\" field (as runc and crun)")
        kind = sysctl_namespace(key)
        if kind is None or not _own_namespace(ns, kind):
            raise ConfigError(
                f"config.json: linux.sysctl.{key}: not in a separate kernel namespace"
                + (f" (needs a {kind} namespace of the container's own)" if kind else "")
            )


# The kernel's namespaced sysctls (ipc/ipc_sysctl.c, ipc/mq_sysctl.c, kernel/utsname_sysctl.c;
# every net.* table is per network namespace): a key is written only if it names one of them
# exactly, never by prefix; the others are the host's (S14).
IPC_SYSCTLS = frozenset((
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.msg_next_id", "kernel.sem",
    "kernel.sem_next_id", "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
    "kernel.shm_rmid_forced", "kernel.shm_next_id", "fs.mqueue.queues_max",
    "fs.mqueue.msg_max", "fs.mqueue.msgsize_max", "fs.mqueue.msg_default",
    "fs.mqueue.msgsize_default",
))  # fmt: skip
UTS_SYSCTLS = frozenset(("kernel.domainname",))  # kernel.hostname: refused, as runc does
PROC_NS_NAMES = {"ipc": "ipc", "network": "net", "uts": "uts"}


def sysctl_path(key: str) -> str:
    """The key's file below the procfs root: dots become slashes (runc 1.1.5)."""
    return PROC_SYS + key.replace(".", "/")


def sysctl_namespace(key: str) -> str | None:
    """The namespace a key belongs to, None for the host's (or a malformed key)."""
    parts = key.replace(".", "/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    if key in IPC_SYSCTLS:
        return "ipc"
    if key in UTS_SYSCTLS:
        return "uts"
    if parts[0] == "net" and len(parts) > 1:
        return "network"
    return None


def _own_namespace(ns: namespaces.NamespacePlan, kind: str) -> bool:
    """A new namespace, or a joined one that is not the runtime's (the host's) own."""
    if kind in ns.new:
        return True
    if kind not in ns.join:
        return False
    sys_ = syscall.get()
    host = sys_.stat(f"/proc/self/ns/{PROC_NS_NAMES[kind]}")
    joined = sys_.fstat(ns.join[kind])
    return (joined.st_dev, joined.st_ino) != (host.st_dev, host.st_ino)
