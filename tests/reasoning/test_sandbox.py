"""The sandbox: escape attempts are contained and reported as failed verdicts; right programs
pass; the child never sees the expected outputs, so exiting early or forging a result line is
not a pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfimprove.reasoning.sandbox import Limits, RunVerdict, Sandbox, best_isolation

PROJECT = Path(__file__).resolve().parents[2]
INPUTS = [[[3, 1, 2]], [[5]]]
EXPECTED = [[3, 2, 1], [5]]


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(cpu_seconds=1, wall_seconds=10, memory_mb=256))


def run(sandbox: Sandbox, body: str) -> RunVerdict:
    return sandbox.run(body, "f", INPUTS, EXPECTED)


def test_a_right_program_passes_and_a_wrong_one_fails(sandbox: Sandbox) -> None:
    right = run(sandbox, "def f(x):\n    return sorted(x)[::-1]\n")
    assert right.passed and right.passed_cases == 2 and right.reason == "2/2 cases right"
    wrong = run(sandbox, "def f(x):\n    return sorted(x)\n")
    assert not wrong.passed and wrong.passed_cases == 1
    assert right.isolation == sandbox.isolation


ESCAPES = {
    "infinite loop": ("def f(x):\n    while True:\n        pass\n", "CPU limit"),
    "fork bomb": ("import os\ndef f(x):\n    while True:\n        os.fork()\n", "os.fork"),
    "memory bomb": ("def f(x):\n    return len(bytearray(10**10))\n", "MemoryError"),
    "network": (
        "import socket\ndef f(x):\n    socket.create_connection(('1.1.1.1', 53))\n",
        "socket",
    ),
    "write outside": (
        "def f(x):\n    open('/tmp/selfimprove-escaped', 'w').write('x')\n    return x\n",
        "writing",
    ),
    "read the project": (
        f"def f(x):\n    return open({str(PROJECT / 'pyproject.toml')!r}).read()\n",
        "reading",
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
    body, reason = ESCAPES[name]
    verdict = run(sandbox, body)
    assert not verdict.passed
    assert reason in verdict.reason, verdict.reason
    assert verdict.seconds < 10
    assert not Path("/tmp/selfimprove-escaped").exists()


def test_with_bubblewrap_the_project_is_not_even_there(sandbox: Sandbox) -> None:
    if best_isolation() != "bwrap":
        pytest.skip("bubblewrap cannot run on this machine")
    body = f"import os\ndef f(x):\n    return os.path.exists({str(PROJECT)!r})\n"
    verdict = sandbox.run(body, "f", [[1]], [False])
    assert verdict.passed, verdict.reason
    assert sandbox.isolation == "bwrap+rlimits+audit"


def test_a_required_level_the_machine_lacks_fails_closed() -> None:
    strict = Sandbox(require="bwrap")
    strict.level, strict.allowed = "rlimits", False  # as on a machine without namespaces
    verdict = run(strict, "def f(x):\n    return sorted(x)[::-1]\n")
    assert not verdict.passed
    assert "only rlimits isolation" in verdict.reason
