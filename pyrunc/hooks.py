"""OCI hooks run by the runtime (prestart, createRuntime, poststart, poststop).

Hooks are plain dicts (path, args, env, timeout) so that `start` and `delete` can run the ones
kept in state.json without importing the spec model.
"""

from __future__ import annotations

import json

from pyrunc.errors import PyruncError


def hook_dict(hook: object) -> dict:
    """The stored form of a spec Hook."""
    d: dict = {"path": hook.path}
    if hook.args is not None:
        d["args"] = list(hook.args)
    if hook.env is not None:
        d["env"] = list(hook.env)
    if hook.timeout is not None:
        d["timeout"] = hook.timeout
    return d


def run_hooks(kind: str, hooks: list[dict], state: dict) -> None:
    """Run hooks in order, each with the state JSON on stdin; the first failure raises."""
    if not hooks:
        return
    import subprocess

    payload = json.dumps(state).encode()
    for i, hook in enumerate(hooks):
        path = hook["path"]
        args = hook.get("args") or [path]
        env = {}
        for item in hook.get("env") or ():
            key, _, value = item.partition("=")
            env[key] = value
        try:
            proc = subprocess.run(
                args,
                executable=path,
                input=payload,
                env=env,
                capture_output=True,
                timeout=hook.get("timeout"),
                close_fds=True,
            )
        except subprocess.TimeoutExpired:
            raise PyruncError(
                f"{kind} hook #{i} ({path}) did not finish within {hook['timeout']}s"
            ) from None
        except OSError as e:
            raise PyruncError(f"{kind} hook #{i} ({path}): {e.strerror.lower()}") from None
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).decode(errors="replace").strip()
            detail = detail.replace("\n", " ")[:500]
            raise PyruncError(
                f"{kind} hook #{i} ({path}) failed with status {proc.returncode}"
                + (f": {detail}" if detail else "")
            )
