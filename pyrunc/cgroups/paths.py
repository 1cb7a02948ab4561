"""`linux.cgroupsPath` -> one absolute cgroup path, the same in every hierarchy.

- absolute (`/libpod_parent/libpod-ID`, containerd's `/NS/ID`): taken as is, relative to each
  hierarchy's root, as the spec requires;
- relative (`a/b`): under `/pyrunc` (the spec lets the runtime pick the base; runc uses its own
  cgroup, which differs per hierarchy and here would nest containers inside whatever cgroup
  the caller happens to run in);
- absent: `/pyrunc/<id>` for the default state root (/run/pyrunc), and
  `/pyrunc/<digest of the root>/<id>` for any other `--root`, so that two roots holding the
  same id (test suites, separate tools) never share a cgroup: a shared one would let one
  container's `delete` kill the other's processes.

`..` components are refused rather than cleaned: a path may never climb out of its base.
systemd's `slice:prefix:name` form is refused (there is no systemd driver).
"""

from __future__ import annotations

from _sha256 import sha256  # hashlib would load OpenSSL into create and the init

from pyrunc.errors import ConfigError

DEFAULT_PARENT = "/pyrunc"
DEFAULT_ROOT = "/run/pyrunc"  # pyrunc.state.DEFAULT_ROOT
FIELD = "config.json: linux.cgroupsPath"


def root_tag(root: str) -> str:
    """A short, stable name for a state root: 12 hex digits of its path's SHA-256."""
    return "r-" + sha256(root.encode()).hexdigest()[:12]


def resolve(cgroups_path: str | None, container_id: str, root: str | None = None) -> str:
    """The container's absolute cgroup path (never "/": the root cgroup is not a container's).
    `root` is the state root (--root); None means the default one."""
    if not cgroups_path:
        if root is None or root.rstrip("/") == DEFAULT_ROOT:
            return f"{DEFAULT_PARENT}/{container_id}"
        return f"{DEFAULT_PARENT}/{root_tag(root)}/{container_id}"
    if "\0" in cgroups_path or "\n" in cgroups_path:
        raise ConfigError(f"{FIELD}: invalid character in {cgroups_path!r}")
    if ":" in cgroups_path and not cgroups_path.startswith("/"):
        raise ConfigError(
            f"{FIELD}: {cgroups_path!r} is a systemd slice:prefix:name path; "
            "pyrunc drives cgroupfs only"
        )
    parts = [p for p in cgroups_path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ConfigError(f"{FIELD}: {cgroups_path!r} may not contain '..'")
    if not parts:
        raise ConfigError(f"{FIELD}: {cgroups_path!r} names the root cgroup")
    if cgroups_path.startswith("/"):
        return "/" + "/".join(parts)
    return DEFAULT_PARENT + "/" + "/".join(parts)


def ancestors(path: str) -> list[str]:
    """`/a/b/c` -> [`/a`, `/a/b`, `/a/b/c`]: the directories to create, outermost first."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
