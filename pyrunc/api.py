"""The importable API: a Runtime bound to one state root, and module-level shortcuts.

Each method imports its lifecycle module on first use, so a program that only reads state never
pays for the spec model.
"""

from __future__ import annotations

from pyrunc.state import DEFAULT_ROOT, StateStore


class Runtime:
    """pyrunc as a library: the same operations as the CLI, on one --root."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.store = StateStore(root)

    def create(self, container_id: str, bundle: str, **options: object) -> int:
        """Create the container; returns the init's host pid (the init waits for `start`)."""
        from pyrunc.lifecycle.create import create

        container, init = create(self.store, container_id, bundle, **options)
        init.close()
        return container.pid

    def start(self, container_id: str) -> None:
        from pyrunc.lifecycle.start import start

        start(self.store, container_id)

    def run(self, container_id: str, bundle: str, **options: object) -> int:
        """Create, start and wait; returns the container's exit status."""
        from pyrunc.lifecycle.run import run

        return run(self.store, container_id, bundle, **options)

    def kill(self, container_id: str, signal: int | str = 15, all_processes: bool = False) -> None:
        from pyrunc.lifecycle.kill import kill
        from pyrunc.signals import parse_signal

        sig = signal if isinstance(signal, int) else parse_signal(signal)
        kill(self.store, container_id, sig, all_processes)

    def delete(self, container_id: str, force: bool = False) -> None:
        from pyrunc.lifecycle.delete import delete

        delete(self.store, container_id, force)

    def pause(self, container_id: str) -> None:
        from pyrunc.lifecycle.pause import pause

        pause(self.store, container_id)

    def resume(self, container_id: str) -> None:
        from pyrunc.lifecycle.pause import resume

        resume(self.store, container_id)

    def ps(self, container_id: str) -> list[int]:
        """The host pids of the container's processes."""
        from pyrunc.lifecycle.ps import container_pids

        return container_pids(self.store, container_id)

    def stats(self, container_id: str) -> dict:
        """One runc-style stats event: `{"type": "stats", "id": ..., "data": {...}}`."""
        from pyrunc.lifecycle.events import stats

        return stats(self.store, container_id)

    def update(self, container_id: str, resources: dict | str | bytes) -> None:
        """Apply a LinuxResources document (dict or JSON) to the container's cgroups."""
        from pyrunc.lifecycle.update import update

        update(self.store, container_id, resources)

    def state(self, container_id: str) -> dict:
        """The OCI state document of one container."""
        lock, container = self.store.lock(container_id, exclusive=False)
        with lock:
            return container.oci_state()

    def list(self) -> list[dict]:
        return [c.oci_state() for c in self.store.containers()]
