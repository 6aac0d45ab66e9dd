"""The sandbox: escape attempts are contained and reported as failed verdicts; right programs
pass; the child never sees the expected outputs, so exiting early or forging a result line is
not a pass. The hostile tests first switch the audit hook off from inside (as an attacker
would), so what they show is the operating system's boundary, not Python's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfimprove.reasoning import sandbox as sandbox_module
from selfimprove.reasoning.sandbox import Limits, RunVerdict, Sandbox, best_isolation

PROJECT = Path(__file__).resolve().parents[2]
INPUTS = [[[3, 1, 2]], [[5]]]
EXPECTED = [[3, 2, 1], [5]]
HOOK_OFF = "import __main__\n__main__.hook.__code__ = (lambda event, args: None).__code__\n"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    box = Sandbox(Limits(cpu_seconds=1, wall_seconds=10, memory_mb=256, processes=16))
    if not box.allowed:
        pytest.fail(f"no safe sandbox on this machine: {box.refusal}")
    return box


def run(sandbox: Sandbox, body: str) -> RunVerdict:
    return sandbox.run(body, "f", INPUTS, EXPECTED)


def test_a_right_program_passes_and_a_wrong_one_fails(sandbox: Sandbox) -> None:
    right = run(sandbox, "def f(x):\n    return sorted(x)[::-1]\n")
    assert right.passed and right.passed_cases == 2 and right.reason == "2/2 cases right"
    wrong = run(sandbox, "def f(x):\n    return sorted(x)\n")
    assert not wrong.passed and wrong.passed_cases == 1
    assert right.isolation == sandbox.isolation
    assert right.isolation.startswith("bwrap+") and "UNSAFE" not in right.isolation


ESCAPES: dict[str, tuple[str, str | tuple[str, ...]]] = {
    "infinite loop": ("def f(x):\n    while True:\n        pass\n", ("CPU limit", "at a limit")),
    "fork bomb": ("import os\ndef f(x):\n    while True:\n        os.fork()\n", "os.fork"),
    "memory bomb": ("def f(x):\n    return len(bytearray(10**10))\n", "MemoryError"),
    "network": (
        "import socket\ndef f(x):\n    socket.create_connection(('1.1.1.1', 53))\n",
        "socket",
    ),
    "write outside": (
        "def f(x):\n    open('/usr/selfimprove-escaped', 'w').write('x')\n    return x\n",
        "writing",
    ),
    "read the project": (  # the hook refuses it, or (a project under /tmp) it is not there
        f"def f(x):\n    return open({str(PROJECT / 'pyproject.toml')!r}).read()\n",
        ("reading", "No such file"),
    ),
    "subprocess": (
        "import subprocess\ndef f(x):\n    return subprocess.run(['true'])\n",
        "subprocess",
    ),
    "ctypes": ("import ctypes\ndef f(x):\n    return ctypes.CDLL(None)\n", "ctypes"),
    "exit early with code 0": ("import sys\nsys.exit(0)\n", "SystemExit"),
    "forge the result line": (
        "import __main__, sys\n"
        'print(__main__.nonce, \'{"outputs": [["ok", "[3, 2, 1]"], ["ok", "[5]"]]}\')\n'
        "sys.exit(0)\n",
        "SystemExit",
    ),
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escapes_are_contained_and_reported(sandbox: Sandbox, name: str) -> None:
    body, reasons = ESCAPES[name]
    verdict = run(sandbox, body)
    assert not verdict.passed
    expected = (reasons,) if isinstance(reasons, str) else reasons
    assert any(reason in verdict.reason for reason in expected), verdict.reason
    assert verdict.seconds < 10
    assert not Path("/usr/selfimprove-escaped").exists()


def test_the_hook_switched_off_leaves_the_project_etc_and_host_temp_out_of_reach(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host")
    paths = [str(PROJECT / "pyproject.toml"), "/etc/passwd", str(secret), str(tmp_path)]
    assert all(Path(p).exists() for p in paths)
    body = f"import os\ndef f():\n    return [os.path.exists(p) for p in {paths!r}]\n"
    verdict = sandbox.run(HOOK_OFF + body, "f", [[]], [[False, False, False, False]])
    assert verdict.passed, verdict.reason


def test_the_hook_switched_off_cannot_write_outside_its_tmpfs(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Writes to the host's temp folder, the project and the interpreter's prefix all fail;
    the only writable place is the child's own capped tmpfs."""
    targets = ["/var/tmp/selfimprove-escaped", str(PROJECT / "escaped"), str(tmp_path / "x")]
    body = (
        "def f():\n    done = []\n"
        f"    for path in {targets!r}:\n"
        "        try:\n            open(path, 'w').write('x')\n            done.append(path)\n"
        "        except OSError:\n            pass\n"
        "    return done\n"
    )
    verdict = sandbox.run(HOOK_OFF + body, "f", [[]], [[]])
    assert verdict.passed, verdict.reason
    assert not any(Path(p).exists() for p in targets)


def test_o_trunc_on_the_interpreters_files_truncates_nothing(sandbox: Sandbox) -> None:
    """`os.open(path, O_RDONLY | O_TRUNC)` truncated files under the prefix before the
    prefix was mounted read-only; a canary under the prefix keeps its bytes, hook on or off."""
    canary = Path(os.path.realpath(sys.base_prefix)) / f"selfimprove-canary-{os.getpid()}"
    canary.write_text("intact")
    try:
        body = (
            "import os\ndef f():\n    try:\n"
            f"        os.close(os.open({str(canary)!r}, os.O_RDONLY | os.O_TRUNC))\n"
            "    except OSError as error:\n        return type(error).__name__\n"
            "    return 'opened'\n"
        )
        for prefix, refused_by in (("", "PermissionError"), (HOOK_OFF, "OSError")):
            verdict = sandbox.run(prefix + body, "f", [[]], [refused_by])
            assert verdict.passed, verdict.reason  # the child got as far as os.open
            assert canary.read_text() == "intact"
    finally:
        canary.unlink()


def test_the_hook_switched_off_cannot_run_a_shell_that_writes_on_the_host(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    target = tmp_path / "from-sh"
    body = (
        "import subprocess\ndef f():\n"
        f"    subprocess.run(['sh', '-c', 'echo escaped > {target}'], check=False)\n"
        "    return 1\n"
    )
    verdict = sandbox.run(HOOK_OFF + body, "f", [[]], [1])
    assert verdict.passed, verdict.reason  # sh ran, inside: its write went nowhere
    assert not target.exists()


def test_the_hook_switched_off_cannot_reach_a_listener_on_loopback(sandbox: Sandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        body = (
            "import socket\ndef f():\n    try:\n"
            f"        socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
            "    except OSError:\n        return 'refused'\n    return 'connected'\n"
        )
        verdict = sandbox.run(HOOK_OFF + body, "f", [[]], ["refused"])
        assert verdict.passed, verdict.reason
        with pytest.raises(TimeoutError):
            listener.accept()


def test_the_hook_switched_off_cannot_read_the_parents_environment(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFIMPROVE_TEST_SECRET", "s3cr3t-value")
    body = (
        "import os\ndef f():\n    found = 0\n    for pid in os.listdir('/proc'):\n"
        "        try:\n"
        "            found += b's3cr3t-value' in open(f'/proc/{pid}/environ', 'rb').read()\n"
        "        except OSError:\n            pass\n    return found\n"
    )
    verdict = sandbox.run(HOOK_OFF + body, "f", [[]], [0])
    assert verdict.passed, verdict.reason


def test_a_double_forked_process_dies_with_the_verdict(sandbox: Sandbox) -> None:
    marker = f"{time.time_ns() % 10**6}.4159"
    body = (
        "import os\ndef f():\n    if os.fork() == 0:\n        os.setsid()\n"
        "        if os.fork() == 0:\n"
        f"            os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
        "        os._exit(0)\n    return 1\n"
    )
    verdict = sandbox.run(HOOK_OFF + body, "f", [[]], [1])
    assert verdict.passed, verdict.reason
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, check=False)
    assert left.stdout == b"", "a process outlived its sandbox"


def test_a_gigabyte_on_stdout_is_cut_off_at_the_cap(sandbox: Sandbox) -> None:
    body = "import os\ndef f():\n    chunk = b'x' * 2**20\n    for _ in range(1024):\n"
    body += "        os.write(1, chunk)\n    return 1\n"
    started = time.perf_counter()
    verdict = sandbox.run(HOOK_OFF + body, "f", [[]], [1])
    assert not verdict.passed
    assert verdict.reason == "output over 1024 KiB", verdict.reason
    assert time.perf_counter() - started < 5


def test_the_process_limit_binds_even_for_root(sandbox: Sandbox) -> None:
    """300 forks: at most the limit (16 here, the interpreter included) succeed, as root too."""
    body = (
        "import os, time\ndef f():\n    made = 0\n    for _ in range(300):\n        try:\n"
        "            if os.fork() == 0:\n                time.sleep(3)\n                os._exit(0)\n"
        "            made += 1\n        except OSError:\n            break\n    return made\n"
    )
    body = body.replace("return made", "return 0 < made < 16")  # bwrap's own two count too
    verdict = sandbox.run(HOOK_OFF + body, "f", [[]], [True])
    assert verdict.passed, verdict.reason


def test_with_bubblewrap_the_project_is_not_even_there(sandbox: Sandbox) -> None:
    assert best_isolation() == "bwrap"
    body = f"import os\ndef f(x):\n    return os.path.exists({str(PROJECT)!r})\n"
    verdict = sandbox.run(body, "f", [[1]], [False])
    assert verdict.passed, verdict.reason


@pytest.mark.parametrize("level", ["namespaces", "rlimits"])
def test_a_level_without_os_isolation_is_refused_unless_unsafe(
    monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    monkeypatch.setattr(sandbox_module, "best_isolation", lambda: level)
    refused = Sandbox(require="rlimits")
    verdict = run(refused, "def f(x):\n    return sorted(x)[::-1]\n")
    assert not verdict.passed and "set unsafe" in verdict.reason
    accepted = Sandbox(require="rlimits", unsafe=True)
    assert accepted.allowed and accepted.isolation.startswith("UNSAFE:")


def test_a_required_level_the_machine_lacks_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module, "best_isolation", lambda: "rlimits")
    strict = Sandbox(require="bwrap", unsafe=True)  # unsafe cannot lower an explicit floor
    verdict = run(strict, "def f(x):\n    return sorted(x)[::-1]\n")
    assert not verdict.passed
    assert "only rlimits isolation" in verdict.reason


def test_the_hook_switched_off_cannot_write_sysctls_or_anything_else_in_proc(
    sandbox: Sandbox,
) -> None:
    """As root the child is the host's uid 0 (without capabilities); sysctls such as
    kernel.core_pattern answer to the uid alone. Nothing in its /proc outside its own
    processes opens for writing, and the root, /dev and /dev/shm are read-only."""
    body = (
        "import os\ndef f():\n    opened = []\n"
        "    for top, dirs, files in os.walk('/proc'):\n"
        "        if top == '/proc':\n"
        "            own = ('self', 'thread-self')\n"
        "            dirs[:] = [d for d in dirs if not d.isdigit() and d not in own]\n"
        "        for name in files:\n"
        "            path = os.path.join(top, name)\n"
        "            try:\n                os.close(os.open(path, os.O_WRONLY))\n"
        "                opened.append(path)\n"
        "            except OSError:\n                pass\n"
        "    for path in ('/x', '/dev/x', '/dev/shm/x', '/proc/sys/kernel/core_pattern'):\n"
        "        try:\n            open(path, 'w').close()\n            opened.append(path)\n"
        "        except OSError:\n            pass\n"
        "    return opened\n"
    )
    verdict = sandbox.run(HOOK_OFF + body, "f", [[]], [[]])
    assert verdict.passed, verdict.reason


def test_forked_memory_is_bounded_for_the_whole_tree(sandbox: Sandbox) -> None:
    """RLIMIT_AS is per process: 6 forks of 200 MB each would hold 1.2 GB. With a memory
    cgroup the tree shares one limit (256 + 16 MB here) and the kernel kills the excess."""
    if "memory-cgroup" not in sandbox.isolation:
        pytest.skip("no memory cgroup here: the tree is bounded by processes x memory_mb")
    body = (
        "import os, time\ndef f():\n    kids = []\n    for _ in range(6):\n"
        "        pid = os.fork()\n        if pid == 0:\n"
        "            block = bytearray(200 * 2**20)\n"
        "            for i in range(0, len(block), 4096):\n                block[i] = 1\n"
        "            time.sleep(1)\n            os._exit(0)\n        kids.append(pid)\n"
        "    done = [os.waitpid(k, 0)[1] == 0 for k in kids]\n    return sum(done) < 6\n"
    )
    verdict = sandbox.run(HOOK_OFF + body, "f", [[]], [True])
    assert verdict.passed or "at a limit" in verdict.reason, verdict.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("import os\nos._exit(200)\n", "exit code 200"),
        ("import os, signal\nos.kill(os.getpid(), 40)\n", "no result"),
    ],
)
def test_odd_exit_codes_are_failed_verdicts_not_crashes(
    sandbox: Sandbox, body: str, reason: str
) -> None:
    verdict = sandbox.run(HOOK_OFF + body, "f", [[]], [1])
    assert not verdict.passed and reason in verdict.reason, verdict.reason


def test_a_run_whose_process_limit_cannot_be_set_up_fails_closed(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selfimprove.reasoning import isolation

    if os.geteuid() != 0:
        pytest.skip("as another user the limit is RLIMIT_NPROC, which needs no cgroup")
    monkeypatch.setattr(isolation, "_new_group", lambda controller, values: None)
    verdict = run(sandbox, "def f(x):\n    return sorted(x)[::-1]\n")
    assert not verdict.passed
    assert verdict.reason == "sandbox: the process limit could not be set up"
    assert verdict.isolation.startswith("UNSAFE:")
