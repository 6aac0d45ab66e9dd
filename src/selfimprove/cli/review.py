"""The terminal review: `selfimprove review RUN [--reviewer NAME] [--adjudicate]`.

One item at a time: its fields, provenance and signals, how many are left, then a single
key, no Enter: `a` accept, `r` reject (then a reason key 1-6), `e` edit, `s` skip, `q`
quit. With `--adjudicate` the items are the disputed ones, shown with each reviewer's
decision, and a decision is the final word (role `adjudicate`).

Model text is untrusted: it is printed as plain text (no rich markup, no emoji codes) with
every control or format character but newline and tab shown escaped (`\\x1b[2J`, not a
cleared screen), so it cannot drive the terminal. On a terminal the keys are read in cbreak
mode (no echo, no line buffering; Ctrl+C still interrupts) and the terminal's settings are
restored however the command ends. An edit opens `$EDITOR` on a temporary file holding the
field; without `$EDITOR`, or when standard input is not a terminal, the new text is read
line by line up to a line holding a single `.`. Not a terminal, keys come one a line, so a
review can be scripted: `printf 'a\\nr\\n2\\nq\\n' | selfimprove review RUN`.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shlex
import subprocess
import sys
import tempfile
import termios
import tty
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from rich.console import Console
from rich.text import Text

from selfimprove.cli import one_line
from selfimprove.core.store import RunStore
from selfimprove.oversight.queue import (
    REASONS,
    REVIEWER_PATTERN,
    Item,
    ReviewError,
    ReviewQueue,
)

PROMPT = "a accept · r reject · e edit · s skip · q quit"
REASON_KEYS = {str(number): reason for number, reason in enumerate(REASONS, start=1)}
END_OF_TEXT = "."
QUIT = ("", "q", "\x04")  # end of input, q, Ctrl+D


def visible(text: str) -> str:
    """Untrusted text made safe to print: newlines and tabs kept, every other control or
    format character (ESC, BEL, CR, bidi overrides) written as its escape (`\\x1b`)."""
    return "".join(
        c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


class Keys(Protocol):
    """Where keys and typed text come from."""

    def key(self) -> str:
        """One key ("" at the end of input)."""
        ...

    def line(self) -> str | None:
        """One line of typed text without its newline (None at the end of input); inside
        `cooked` on a terminal."""
        ...

    def editor(self) -> str | None:
        """The editor to open for an edit, or None to read lines."""
        ...

    def cooked(self) -> AbstractContextManager[None]:
        """The terminal as it was, while an editor runs or a line is typed."""
        ...


class TerminalKeys:
    """Single keys from a terminal in cbreak mode; its settings restored on exit."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved = termios.tcgetattr(fd)
        self.pending = b""  # read past the end of a typed line

    def __enter__(self) -> TerminalKeys:
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def key(self) -> str:
        if self.pending:
            data, self.pending = self.pending[:1], self.pending[1:]
        else:
            data = os.read(self.fd, 1)
        if data and (data == b"\x1b" or data[0] >= 0x80):  # an arrow key, a UTF-8 letter:
            while select.select([self.fd], [], [], 0.02)[0]:  # the rest of it is one key
                data += os.read(self.fd, 32)
        return data.decode("utf-8", errors="replace")

    def line(self) -> str | None:
        """A line typed in `cooked` mode (echoed, editable with backspace)."""
        while b"\n" not in self.pending:
            chunk = os.read(self.fd, 4096)
            if not chunk:
                text, self.pending = self.pending, b""
                return text.decode("utf-8", errors="replace") if text else None
            self.pending += chunk
        text, self.pending = self.pending.split(b"\n", 1)
        return text.decode("utf-8", errors="replace")

    def editor(self) -> str | None:
        return os.environ.get("EDITOR") or None

    @contextmanager
    def cooked(self) -> Iterator[None]:
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        try:
            yield
        finally:
            tty.setcbreak(self.fd)


@dataclass
class LineKeys:
    """Keys one a line (a script, a pipe): a line of more than one character is no key."""

    stream: BinaryIO

    def key(self) -> str:
        while raw := self.stream.readline():
            text = raw.decode("utf-8", errors="replace").strip()
            if text:
                return text
        return ""

    def line(self) -> str | None:
        raw = self.stream.readline()
        return None if not raw else raw.decode("utf-8", errors="replace").removesuffix("\n")

    def editor(self) -> str | None:
        return None  # an editor needs a terminal

    def cooked(self) -> AbstractContextManager[None]:
        return nullcontext()


def review(run_dir: Path, args: argparse.Namespace, out: Console) -> int:
    """Review `run_dir`'s queue from the terminal; returns the exit code."""
    reviewer = args.reviewer or os.environ.get("USER") or "reviewer"
    if not re.fullmatch(REVIEWER_PATTERN, reviewer):
        raise ReviewError(f"reviewer {reviewer!r}: use 1-40 letters, digits, . _ @ - (--reviewer)")
    code = 0
    with ReviewQueue.open(run_dir, create=False) as queue:
        session = Session(queue, reviewer, args.adjudicate, out)
        try:
            if sys.stdin.isatty():
                with TerminalKeys(sys.stdin.fileno()) as keys:
                    session.run(keys)
            else:
                session.run(LineKeys(sys.stdin.buffer))
        except KeyboardInterrupt:
            out.print()
            code = 130
    out.print(Text(f"{session.made} decisions recorded as {reviewer}"))
    if _run_status(run_dir) == "waiting":
        out.print(Text("the run is waiting for review; continue it with"))
        out.print(Text(f"  {_resume(run_dir, args)}"), soft_wrap=True)  # one line to copy
    return code


@dataclass
class Session:
    """One reviewer going through the queue; `made` counts the decisions recorded."""

    queue: ReviewQueue
    reviewer: str
    adjudicate: bool
    out: Console
    made: int = 0
    passed: set[str] = field(default_factory=set)  # skipped in this session (adjudication)

    def run(self, keys: Keys) -> None:
        while (item := self.next_item()) is not None:
            self.show(item)
            if not self.ask(item, keys):
                return
        what = "disputed items" if self.adjudicate else "items for you"
        self.out.print(Text(f"no {what} left to review"))

    def next_item(self) -> Item | None:
        if not self.adjudicate:
            found = self.queue.next_for(self.reviewer, 1)
            return found[0] if found else None
        return next(iter(self.disputed()), None)

    def disputed(self) -> list[Item]:
        return [i for i in self.queue.items(status="disputed") if i.id not in self.passed]

    def left(self) -> int:
        if self.adjudicate:
            return len(self.disputed())
        return self.queue.count_for(self.reviewer)

    def show(self, item: Item) -> None:
        print_ = self.out.print
        title = f"item {item.id} · {item.kind} · arm {item.arm}, generation {item.generation}"
        self.out.rule(Text(one_line(title)))
        for name, value in item.fields.items():
            editable = " (editable)" if name in item.editable else ""
            print_(Text(f"{one_line(name)}{editable}:", style="bold"))
            print_(Text(visible(value)))
        print_(Text(f"provenance: {_pairs(item.provenance)}", style="dim"))
        print_(Text(f"signals: {_pairs(item.signals)}", style="dim"))
        if self.adjudicate:
            newest = {d.reviewer: d for d in self.queue.decisions(item.id) if d.role == "review"}
            for name, d in sorted(newest.items()):
                said = d.action + (f" ({d.reason})" if d.reason else "")
                said += f": {d.note}" if d.note else ""
                said += f" -> {_pairs(d.edit)}" if d.edit else ""
                print_(Text(f"{one_line(name)} said {visible(said)}"))
        print_(Text(f"{self.left()} left"))

    def ask(self, item: Item, keys: Keys) -> bool:
        """Read keys until one decides the item (True) or quits (False)."""
        while True:
            self.out.print(Text(PROMPT, style="bold"))
            key = keys.key()
            if key in QUIT:
                return False
            if key == "a":
                return self.decide(item, "accept")
            if key == "r":
                reason = self.reason(keys)
                if reason is not None:
                    return self.decide(item, "reject", reason)
            elif key == "e":
                edit = self.edit(item, keys)
                if edit is not None:
                    return self.decide(item, "edit", edit=edit)
            elif key == "s":
                self.passed.add(item.id)
                return self.decide(item, "skip")
            else:
                self.out.print(Text(f"no key '{visible(key)}' here"))

    def decide(
        self,
        item: Item,
        action: str,
        reason: str | None = None,
        edit: dict[str, str] | None = None,
    ) -> bool:
        role = "adjudicate" if self.adjudicate else "review"
        outcome = self.queue.decide(item.id, self.reviewer, action, reason, edit=edit, role=role)
        self.made += 1
        self.out.print(Text(f"{action} recorded; the item is now {outcome.status}"))
        return True

    def reason(self, keys: Keys) -> str | None:
        choices = "  ".join(f"{k} {reason}" for k, reason in REASON_KEYS.items())
        self.out.print(Text(f"reason: {choices}  (any other key: back)"))
        return REASON_KEYS.get(keys.key())

    def edit(self, item: Item, keys: Keys) -> dict[str, str] | None:
        if not item.editable:
            self.out.print(Text("nothing in this item can be edited"))
            return None
        name = item.editable[0]
        if len(item.editable) > 1:
            fields = "  ".join(f"{n} {f}" for n, f in enumerate(item.editable, start=1))
            self.out.print(Text(f"edit which field: {one_line(fields)}"))
            number = keys.key()
            if not (number.isdigit() and 1 <= int(number) <= len(item.editable)):
                return None
            name = item.editable[int(number) - 1]
        current = item.fields.get(name, "")
        editor = keys.editor()
        text = self.run_editor(editor, current, keys) if editor else self.read_text(name, keys)
        if text is None or text == current:
            self.out.print(Text("no edit recorded"))
            return None
        return {name: text}

    def run_editor(self, editor: str, current: str, keys: Keys) -> str | None:
        handle, path = tempfile.mkstemp(prefix="selfimprove-edit-", suffix=".txt")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as f:
                f.write(current)
            with keys.cooked():
                code = subprocess.run([*shlex.split(editor), path], check=False).returncode
            if code != 0:
                self.out.print(Text(f"the editor exited with status {code}"))
                return None
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError) as error:  # no such editor, an unbalanced quote in it
            self.out.print(Text(f"cannot run $EDITOR ({one_line(str(error))})"))
            return None
        finally:
            Path(path).unlink(missing_ok=True)
        if text.endswith("\n") and not current.endswith("\n"):  # the editor's final newline
            text = text[:-1]
        return text

    def read_text(self, name: str, keys: Keys) -> str | None:
        with keys.cooked():  # the prompt once the terminal echoes: nothing typed is lost
            self.out.print(Text(f"type the new {one_line(name)}; end with a line holding only ."))
            lines: list[str] = []
            while (line := keys.line()) != END_OF_TEXT:
                if line is None:
                    return None
                lines.append(line)
        return "\n".join(lines)


def _pairs(values: Mapping[str, object]) -> str:
    return ", ".join(f"{one_line(str(k))}={one_line(str(v))}" for k, v in values.items()) or "-"


def _run_status(run_dir: Path) -> str:
    store = RunStore.open(run_dir)
    try:
        return store.status()
    finally:
        store.close()


def _resume(run_dir: Path, args: argparse.Namespace) -> str:
    """The command that continues this run, as the user would type it."""
    runs_dir: Path = args.runs_dir
    if run_dir.parent.resolve() != runs_dir.resolve():
        return f"selfimprove resume {shlex.quote(one_line(str(run_dir)))}"
    prefix = (
        "" if runs_dir == Path("runs") else f" --runs-dir {shlex.quote(one_line(str(runs_dir)))}"
    )
    return f"selfimprove{prefix} resume {shlex.quote(run_dir.name)}"
