"""`selfimprove review` as a person meets it: single keys typed into a real pseudo-terminal
(accept, reject with a reason, an edit in $EDITOR, skip, quit), the decisions and the audit
log they leave, model text that tries to drive the terminal shown escaped, the terminal's
settings restored after a quit and after Ctrl+C; and the same review scripted through a
pipe, adjudication included."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from selfimprove.cli.review import PROMPT
from selfimprove.core.store import RunStore
from selfimprove.oversight.queue import Item, ReviewQueue

CLEAR_SCREEN = "\x1b[2J"
PROMPT_BYTES = PROMPT.split(" · ")[0].encode()  # "a accept": the start of every prompt


def _make_run(runs_dir: Path, texts: list[str], needed: int = 1) -> tuple[Path, list[str]]:
    """A run (no loop ran it) whose queue holds one item per text, marked `waiting`."""
    store = RunStore.create(runs_dir, "reasoning.star", {}, 0, "test")
    store.set_status("waiting")
    store.close()
    items = [
        Item.new(
            "rationale", "star", 1, {"prompt": "1+1=", "completion": text}, ("completion",),
            {"source": "synthetic", "model": "generation-0"}, {"verifier/passed": True}, needed,
        )
        for text in texts
    ]  # fmt: skip
    with ReviewQueue.open(store.run_dir) as queue:
        queue.add(items)
    return store.run_dir, [item.id for item in items]


class Terminal:
    """A child process on a pseudo-terminal: keys go in, the screen's bytes come out."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
        # A child inherits an ignored or blocked SIGINT across exec. A person's terminal
        # starts the review with Ctrl+C live. In two whole-suite runs the Ctrl+C test timed
        # out exactly as it does when pytest's process ignores SIGINT (reproduced; which
        # earlier test changes it was not found), so the child gets a terminal's default.
        handler = signal.signal(signal.SIGINT, signal.default_int_handler)
        blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        try:
            self.process = subprocess.Popen(
                args, stdin=self.slave, stdout=self.slave, stderr=self.slave, env=env,
                start_new_session=True,
            )  # fmt: skip
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            signal.signal(signal.SIGINT, handler)
        self.screen = b""

    def _drain(self, seconds: float) -> None:
        if select.select([self.master], [], [], seconds)[0]:
            self.screen += os.read(self.master, 65536)

    def wait_for(self, text: bytes, count: int = 1, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while self.screen.count(text) < count:
            assert time.monotonic() < deadline, f"no {text!r} x{count} in {self.screen[-2000:]!r}"
            assert self.process.poll() is None, f"exited: {self.screen[-2000:]!r}"
            self._drain(0.1)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def finish(self, seconds: float = 30) -> int:
        deadline = time.monotonic() + seconds
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"still running: {self.screen[-2000:]!r}"
            self._drain(0.1)
        self._drain(0.1)
        return self.process.returncode

    def local_flags(self) -> int:
        return int(termios.tcgetattr(self.slave)[3])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture()
def editor(tmp_path: Path) -> Path:
    """An $EDITOR that replaces the file's text (and adds the final newline editors add)."""
    script = tmp_path / "editor.py"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "open(sys.argv[1], 'w').write('1+1=2\\nthe editor fixed it\\n')\n"
    )
    script.chmod(0o755)
    return script


def _review_args(runs_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "selfimprove", "--runs-dir", str(runs_dir), "review",
            run_dir.name, *extra]  # fmt: skip


def test_single_keys_in_a_terminal_decide_items(tmp_path: Path, editor: Path) -> None:
    runs_dir = tmp_path / "runs"
    texts = [f"1+1=2 {CLEAR_SCREEN}\x07 done", "1+1=3", "1+1=2", "1+1=4", "1+1=5"]
    run_dir, ids = _make_run(runs_dir, texts)
    with ReviewQueue.open(run_dir) as queue:
        entries_before = queue.audit.verify(queue.audit_entries()).entries
    env = {**os.environ, "EDITOR": str(editor), "TERM": "xterm-256color"}
    terminal = Terminal(_review_args(runs_dir, run_dir, "--reviewer", "tester"), env)
    try:
        terminal.wait_for(PROMPT_BYTES, 1)
        flags = terminal.local_flags()
        assert not flags & termios.ICANON and not flags & termios.ECHO  # cbreak: single keys
        assert b"5 left" in terminal.screen
        for number, keys in enumerate(["a", "r2", "e", "s"], start=2):
            terminal.type(keys[0])
            if len(keys) > 1:
                terminal.wait_for(b"reason:")
                terminal.type(keys[1])
            terminal.wait_for(PROMPT_BYTES, number)
        terminal.type("q")
        assert terminal.finish() == 0
        flags = terminal.local_flags()
        assert flags & termios.ICANON and flags & termios.ECHO  # the terminal is as it was
        screen = terminal.screen
    finally:
        terminal.close()
    assert CLEAR_SCREEN.encode() not in screen and b"\x07" not in screen
    assert b"1+1=2 \\x1b[2J\\x07 done" in screen  # shown escaped, as text
    assert b"4 decisions recorded as tester" in screen
    assert f"--runs-dir {runs_dir} resume {run_dir.name}".encode() in screen
    with ReviewQueue.open(run_dir) as queue:
        decided = {d.item: (d.reviewer, d.action, d.reason, d.edit) for d in queue.decisions()}
        check = queue.audit.verify(queue.audit_entries())
    assert decided == {
        ids[0]: ("tester", "accept", None, None),
        ids[1]: ("tester", "reject", "incorrect", None),
        ids[2]: ("tester", "edit", None, {"completion": "1+1=2\nthe editor fixed it"}),
        ids[3]: ("tester", "skip", None, None),
    }
    assert check.ok and check.entries == entries_before + 4


def test_ctrl_c_keeps_the_decisions_and_restores_the_terminal(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    run_dir, ids = _make_run(runs_dir, ["1+1=2", "1+1=3"])
    terminal = Terminal(_review_args(runs_dir, run_dir, "--reviewer", "tester"), dict(os.environ))
    try:
        terminal.wait_for(PROMPT_BYTES, 1)
        terminal.type("a")
        terminal.wait_for(PROMPT_BYTES, 2)
        assert not terminal.local_flags() & termios.ICANON
        terminal.process.send_signal(signal.SIGINT)  # what Ctrl+C sends
        assert terminal.finish() == 130
        flags = terminal.local_flags()
        assert flags & termios.ICANON and flags & termios.ECHO
        assert b"1 decisions recorded as tester" in terminal.screen
    finally:
        terminal.close()
    with ReviewQueue.open(run_dir) as queue:
        assert [(d.item, d.action) for d in queue.decisions()] == [(ids[0], "accept")]


def test_without_editor_an_edit_is_typed_into_the_terminal(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    run_dir, ids = _make_run(runs_dir, ["1+1=3"])
    env = {k: v for k, v in os.environ.items() if k != "EDITOR"}
    terminal = Terminal(_review_args(runs_dir, run_dir, "--reviewer", "tester"), env)
    try:
        terminal.wait_for(PROMPT_BYTES, 1)
        terminal.type("e")
        terminal.wait_for(b"type the new completion")
        terminal.type("1+1=2\nso 2\n.\n")  # lines, typed in the terminal's own line mode
        assert terminal.finish() == 0
        assert b"no items for you left to review" in terminal.screen
    finally:
        terminal.close()
    with ReviewQueue.open(run_dir) as queue:
        (decision,) = queue.decisions()
    assert (decision.item, decision.action) == (ids[0], "edit")
    assert decision.edit == {"completion": "1+1=2\nso 2"}


def _pipe(
    runs_dir: Path, run_dir: Path, keys: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EDITOR"} | {"USER": "carol"}
    return subprocess.run(
        _review_args(runs_dir, run_dir, *extra), input=keys, capture_output=True, text=True,
        env=env, check=False, timeout=60,
    )  # fmt: skip


def test_keys_one_a_line_through_a_pipe(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    run_dir, ids = _make_run(runs_dir, ["1+1=2", "1+1=3", "1+1=4", "1+1=5"])
    # reject needs its reason; "accept" is no key; an edit reads lines up to a lone "."
    keys = "r\nx\nr\n6\naccept\na\ne\n1+1=2\nso 2\n.\n"
    result = _pipe(runs_dir, run_dir, keys)
    assert result.returncode == 0, result.stderr
    assert "no key 'accept' here" in result.stdout
    assert "3 decisions recorded as carol" in result.stdout  # $USER names the reviewer
    with ReviewQueue.open(run_dir) as queue:
        decided = [(d.item, d.reviewer, d.action, d.reason, d.edit) for d in queue.decisions()]
        assert queue.audit.verify(queue.audit_entries()).ok
    assert decided == [
        (ids[0], "carol", "reject", "other", None),
        (ids[1], "carol", "accept", None, None),
        (ids[2], "carol", "edit", None, {"completion": "1+1=2\nso 2"}),
    ]


def test_adjudication_shows_each_decision_and_has_the_final_word(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    run_dir, ids = _make_run(runs_dir, ["1+1=2", "1+1=3"], needed=2)
    with ReviewQueue.open(run_dir) as queue:
        queue.decide(ids[0], "ann", "accept")
        queue.decide(ids[0], "bob", "reject", "reward_hack", note="looks copied")
    result = _pipe(runs_dir, run_dir, "r\n5\n", "--adjudicate", "--reviewer", "judge")
    assert result.returncode == 0, result.stderr
    assert "ann said accept" in result.stdout
    assert "bob said reject (reward_hack): looks copied" in result.stdout
    assert "no disputed items left to review" in result.stdout
    with ReviewQueue.open(run_dir) as queue:
        final = queue.decisions(ids[0])[-1]
        assert (final.reviewer, final.action, final.role) == ("judge", "reject", "adjudicate")
        assert queue.item(ids[0]).status == "reject" and queue.item(ids[1]).status == "pending"


def test_a_bad_reviewer_name_is_one_line_and_exit_2(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    run_dir, _ = _make_run(runs_dir, ["1+1=2"])
    result = _pipe(runs_dir, run_dir, "a\n", "--reviewer", "no spaces")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "reviewer 'no spaces'" in result.stderr
