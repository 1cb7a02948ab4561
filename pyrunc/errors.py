"""Error types: every failure pyrunc reports is one of these, with a one-line message."""

from __future__ import annotations


class PyruncError(Exception):
    """A failure to report to the user as one line, exit status 1."""

    exit_code = 1


class ConfigError(PyruncError):
    """config.json is malformed; the message names the JSON path (`config.json: a.b: ...`)."""


class ContainerNotFound(PyruncError):
    """No container with that id under --root (clients match the words "does not exist")."""


class StateError(PyruncError):
    """The operation is not allowed in the container's current status."""


class StateCorrupt(PyruncError):
    """A state file is damaged (not JSON, wrong shape, not a regular file, ...); the message
    names the file. `delete --force` still recovers such a container, `network rm --force`
    removes such a network record."""


class CgroupError(PyruncError):
    """A cgroup operation failed, or a resource this host's cgroups cannot apply."""
