"""Progress bars for a run or a tour: one bar per arm with its wall time and an ETA; an arm a
guard halted keeps its bar, stopped, with the generation it halted at."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from selfimprove.core.engine import ArmProgress


@contextmanager
def progress_bars(console: Console) -> Iterator[Callable[[ArmProgress], None]]:
    """Bars shown from an arm's start on (a command that fails before, such as a resume
    refused, prints nothing but its error). Columns: arm, bar, generations done of all,
    wall time since the arm started, and the time it still needs at its pace so far."""
    columns = (
        TextColumn("{task.description}", markup=False),  # an arm's name is text, not markup
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("wall"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=console, transient=False)
    tasks: dict[str, TaskID] = {}

    def update(where: ArmProgress) -> None:
        key = f"{where.run}/{where.arm}"
        if not tasks:
            bar.start()
        if key not in tasks:
            tasks[key] = bar.add_task(where.arm[:48], total=where.total)
        task = tasks[key]
        bar.update(task, completed=where.generation)
        if where.status == "halted":
            note = f"{where.arm[:48]} (halted by a guard at generation {where.generation})"
            bar.update(task, description=note)
            bar.stop_task(task)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()
