#!/usr/bin/env python3
"""What each proposed optimisation would save, measured on scratch copies of pyrunc.

    python3 bench/whatif.py [--rounds N] [--out bench/WHATIF.md]

Copies pyrunc/ (this checkout, built extensions included) into a temporary directory once per
variant, applies that variant's small text patch to the copy (never to pyrunc/ itself), and
times `run` of /bin/true, `create`, `state` and `exec` with every variant interleaved round by
round. A patch that no longer applies is reported and its variant skipped. The patches are
prototypes that show the saving; they are not the finished change (see bench/README.md).
Must run as root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = sys.executable
SITE_PACKAGES = next((p for p in sys.path if p.endswith("site-packages")), "")

# the console script pip generates for pyproject's `pyrunc = "<module>:<func>"`
CONSOLE_SCRIPT = """import re
import sys
from {module} import {func}
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit({func}())
"""

# a launcher run as `python -I -S launcher`: no site, sys.path given explicitly (what
# sealed.reexec_sealed already does for the second interpreter)
NOSITE_LAUNCHER = """import sys
sys.path[:0] = {path!r}
from {module} import {func}
sys.exit({func}())
"""

# the re-exec decided before argparse (and before anything but sys/os) is imported
ENTRY = '''"""Console entry: re-exec sealed create/run/exec before importing the CLI."""
import sys

_VALUE_OPTIONS = {"--root", "--log", "--log-format", "--rootless", "--criu"}


def _command(argv):
    it = iter(argv)
    for a in it:
        if a in _VALUE_OPTIONS:
            next(it, None)
        elif not a.startswith("-"):
            return a
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if _command(argv) in ("create", "run", "exec"):
        from pyrunc import sealed

        if not sealed.running_sealed():
            sealed.reexec_sealed(argv)
    import pyrunc.cli as cli

    if hasattr(cli, "run"):  # the checkout's own entry point (it ends with os._exit)
        sys.argv[1:] = argv
        return cli.run()
    return cli.main(argv)
'''

OS_EXIT = '''

_cli_main = main


def main(argv=None):
    """os._exit once stdout/stderr are flushed: no interpreter teardown."""
    import os as _os

    rc = _cli_main(argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        _os._exit(rc)
'''

COPY_CONFIG = '''

def _copy_config(state_dir: str, src: str) -> None:
    """The bundle's config.json bytes as they are (prototype: re-reads the file)."""
    tmp = os.path.join(state_dir, f".{CONFIG_COPY}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with open(src, "rb") as f:
            os.write(fd, f.read())
    finally:
        os.close(fd)
    os.rename(tmp, os.path.join(state_dir, CONFIG_COPY))
'''

# name -> [(file, old, new)]: old None appends, old "" writes a new file
PATCHES = {
    "os_exit": [("cli.py", None, OS_EXIT)],
    "raw_config": [
        ("lifecycle/create.py", "        save_config(state_dir, spec)\n",
         '        _copy_config(state_dir, os.path.join(bundle, "config.json"))\n'),
        ("lifecycle/create.py", None, COPY_CONFIG),
    ],
    "early_reexec": [("_entry.py", "", ENTRY)],
    "no_reexec": [("sealed.py", 'return os.readlink("/proc/self/exe").startswith('
                   '"/memfd:pyrunc-python")', "return True")],
    "sha256": [("cgroups/paths.py", "import hashlib\n", "import _sha256 as hashlib\n")],
    "gc_off": [("cli.py", "    from pyrunc import log\n\n    argv = sys.argv[1:]",
                "    import gc\n\n    gc.disable()\n    from pyrunc import log\n\n"
                "    argv = sys.argv[1:]")],
    "no_detail": [("spec/converter.py", "detailed_validation=True", "detailed_validation=False")],
}

# name -> (file, test of its text): the change is already in this checkout (then the patch is
# left out and the variant measures nothing new)
ALREADY = {
    "os_exit": ("cli.py", lambda t: "os._exit(" in t),
    "raw_config": ("lifecycle/create.py", lambda t: "unstructure_config" not in t),
    "sha256": ("cgroups/paths.py", lambda t: "import hashlib" not in t),
    "gc_off": ("cli.py", lambda t: "gc.disable()" in t),
}


def entry_point() -> tuple[str, str]:
    """pyproject.toml's `pyrunc = "module:func"`: what the console script calls."""

    return "pyrunc.cli", "run"  # what setup.py's launcher calls


VARIANTS = [
    ("baseline", "this checkout as it is, through the console script", [], "script"),
    ("os._exit", "flush stdout/stderr and os._exit() at the end of main: no interpreter "
     "teardown", ["os_exit"], "script"),
    ("raw config copy", "`save_config` writes the bundle's config.json bytes instead of "
     "cattrs-unstructuring the spec", ["raw_config"], "script"),
    ("re-exec before argparse", "a console entry that re-execs create/run/exec before "
     "importing pyrunc.cli/argparse", ["early_reexec"], "script"),
    ("launcher without site", "the console script run as `python -I -S` with sys.path set "
     "(no site, no .pth files)", [], "nosite"),
    ("_sha256, not hashlib", "cgroups/paths.py digests with the _sha256 module: no OpenSSL "
     "load", ["sha256"], "script"),
    ("gc.disable()", "gc.disable() first thing in main", ["gc_off"], "script"),
    ("no sealed re-exec", "running_sealed() always true: one interpreter (what moving S1 into "
     "the init would give; NOT safe as is)", ["no_reexec"], "script"),
    ("detailed_validation=False", "cattrs without detailed validation (changes error messages; "
     "for scale only)", ["no_detail"], "script"),
    ("all proposed", "os._exit + raw config copy + re-exec before argparse + launcher without "
     "site + _sha256 + gc.disable()", ["os_exit", "raw_config", "early_reexec", "sha256",
                                       "gc_off"], "nosite"),
    ("all proposed + no re-exec", "the above, and one interpreter",
     ["os_exit", "raw_config", "early_reexec", "sha256", "gc_off", "no_reexec"], "nosite"),
]


def make_copy(work: str, name: str, patches: list[str], notes: list[str]) -> tuple[str | None, int]:
    """A patched copy of pyrunc/ under work/<name>/ and how many patches it got; None when a
    patch does not apply."""
    parent = os.path.join(work, name.replace(" ", "_").replace("/", "_"))
    shutil.copytree(os.path.join(REPO, "pyrunc"), os.path.join(parent, "pyrunc"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    applied = 0
    for key in patches:
        if key in ALREADY:
            rel, test = ALREADY[key]
            with open(os.path.join(parent, "pyrunc", rel)) as f:
                if test(f.read()):
                    notes.append(f"{key} is already in this checkout (variant {name!r})")
                    continue
        for rel, old, new in PATCHES[key]:
            path = os.path.join(parent, "pyrunc", rel)
            if old == "":
                with open(path, "w") as f:
                    f.write(new)
                continue
            with open(path) as f:
                text = f.read()
            if old is None:
                text += new
            elif old in text:
                text = text.replace(old, new, 1)
            else:
                notes.append(f"{key} no longer applies to {rel}: variant {name!r} left out")
                return None, 0
            with open(path, "w") as f:
                f.write(text)
        applied += 1
    return parent, applied


def launcher(parent: str, kind: str, early: bool) -> list[str]:
    module, func = ("pyrunc._entry", "main") if early else entry_point()
    if kind == "nosite":
        path = os.path.join(parent, "launcher_nosite.py")
        with open(path, "w") as f:
            f.write(NOSITE_LAUNCHER.format(path=[parent, SITE_PACKAGES], module=module,
                                           func=func))
        return [PY, "-I", "-S", path]
    path = os.path.join(parent, "pyrunc-script.py")
    with open(path, "w") as f:
        f.write(CONSOLE_SCRIPT.format(module=module, func=func))
    return [PY, path]


def git_head() -> str:
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "pyrunc"],
                           capture_output=True, text=True).stdout.strip()
    return f"git {head}{' + uncommitted changes in pyrunc/' if dirty else ''}"


def timed(argv: list[str], env: dict[str, str]) -> float:
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err)
        p.wait()
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{argv[-4:]}: exit {p.returncode}: "
                               f"{err.read().decode(errors='replace')[-300:]}")
    return dt


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--out", default=os.path.join(HERE, "WHATIF.md"))
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("must run as root", file=sys.stderr)
        return 1
    started = time.time()
    work = tempfile.mkdtemp(prefix="pyrunc-whatif-", dir="/run")
    root = os.path.join(work, "root")
    sleeper = f"whatif-sleep-{os.getpid()}"
    base_env = dict(os.environ)
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    base_env["PYTHONPYCACHEPREFIX"] = os.path.join(work, "pycache")
    variants = []
    notes: list[str] = []
    try:
        bundle = os.path.join(work, "bundle")
        subprocess.run(["bash", os.path.join(REPO, "bundles", "make-busybox.sh"), bundle],
                       check=True, capture_output=True)
        with open(os.path.join(bundle, "config.json")) as f:
            config = json.load(f)
        config["process"]["args"] = ["/bin/true"]
        config["ociVersion"] = "1.0.2"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        sleep_bundle = os.path.join(work, "bundle-sleep")
        os.mkdir(sleep_bundle)
        config["process"]["args"] = ["/bin/sleep", "1000000"]
        config["root"]["path"] = os.path.join(bundle, "rootfs")
        with open(os.path.join(sleep_bundle, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        for name, what, patches, kind in VARIANTS:
            parent, applied = make_copy(work, name, patches, notes)
            if parent is None:
                continue
            if patches and not applied and kind == "script":
                notes.append(f"variant {name!r} left out: nothing left to apply")
                continue
            env = dict(base_env, PYTHONPATH=parent)
            variants.append((name, what, launcher(parent, kind, "early_reexec" in patches), env))
        for note in notes:
            print(note, file=sys.stderr)
        base_cmd, base_env2 = variants[0][2], variants[0][3]
        timed([*base_cmd, "--root", root, "create", "-b", sleep_bundle, sleeper], base_env2)
        timed([*base_cmd, "--root", root, "start", sleeper], base_env2)
        commands = ["run", "create", "state", "exec"]
        times: dict[tuple[str, str], list[float]] = {}
        seq = 0
        for r in range(args.rounds + 1):
            k = r % len(variants)
            for name, _, cmd, env in variants[k:] + variants[:k]:
                seq += 1
                cid = f"whatif-{os.getpid()}-{seq}"
                t = {
                    "run": timed([*cmd, "--root", root, "run", "-b", bundle, cid + "r"], env),
                    "create": timed([*cmd, "--root", root, "create", "-b", bundle, cid], env),
                    "state": timed([*cmd, "--root", root, "state", cid], env),
                    "exec": timed([*cmd, "--root", root, "exec", sleeper, "/bin/true"], env),
                }
                timed([*cmd, "--root", root, "delete", "--force", cid], env)
                if r > 0:
                    for c in commands:
                        times.setdefault((name, c), []).append(t[c])
            print(f"round {r}/{args.rounds}{' (warm-up)' if r == 0 else ''}", file=sys.stderr,
                  flush=True)
        lines = ["# What each proposed optimisation saves (bench/whatif.py)", "",
                 f"`python3 bench/whatif.py {' '.join(argv)}`, "
                 f"{time.strftime('%Y-%m-%d %H:%M')}, {(time.time() - started) / 60:.1f} min, "
                 f"nproc {os.cpu_count()}, load at the end "
                 f"{open('/proc/loadavg').read().split()[0]}. Each variant is a patched scratch "
                 f"copy of pyrunc/; median wall ms of {args.rounds} interleaved rounds after a "
                 f"warm-up; the saving is the baseline's median minus the variant's (negative: "
                 f"slower, i.e. noise). `exec` runs /bin/true in a running container.", "",
                 "| variant | " + " | ".join(f"{c} ms (saved)" for c in commands) + " |",
                 "| --- |" + " ---: |" * len(commands)]
        for name, _, _, _ in variants:
            cells = []
            for c in commands:
                med = statistics.median(times[(name, c)])
                base = statistics.median(times[("baseline", c)])
                cells.append(f"{med * 1000:.1f}" + ("" if name == "baseline" else
                                                    f" ({(base - med) * 1000:+.1f})"))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "Variants:", ""]
        lines += [f"- {name}: {what}" for name, what, _, _ in variants]
        if notes:
            lines += ["", "Patches:", ""] + [f"- {n}" for n in notes]
        module, func = entry_point()
        lines += ["", f"Checkout: {git_head()}; console entry point `{module}:{func}`."]
        text = "\n".join(lines) + "\n"
        with open(args.out, "w") as f:
            f.write(text)
        print(text)
        return 0
    finally:
        if variants:
            cmd, env = variants[0][2], variants[0][3]
            if os.path.isdir(root):
                for cid in os.listdir(root):
                    subprocess.run([*cmd, "--root", root, "delete", "--force", cid], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
