"""A run's generation folders, `arms/<arm>/gen-NNNNN/`, on disk: written under a temporary
name and renamed, removed by renaming away first, so a kill at any moment leaves either a
whole folder under its `gen-*` name or a leftover that a resume or `gc` clears. What the
database records about them (checksums, which generations count) is `core/store.py`'s.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from selfimprove.core.snapshot import LEGACY_FILE, STATE_FILE, SnapshotError


def write_folder(final: Path, write: Callable[[Path], None]) -> Path:
    """Let `write` fill a temporary folder, then rename it to `final` atomically."""
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    write(temporary)
    if final.exists():  # left by a crash after the rename but before the commit
        discard(final)
    os.rename(temporary, final)
    return final


def snapshot_folders(arm_dir: Path) -> list[Path]:
    """An arm's `gen-*` folders that hold a snapshot, oldest first."""
    return sorted(folder for folder in arm_dir.glob("gen-*") if holds_snapshot(folder))


def leftovers(arms_root: Path) -> list[Path]:
    """What interrupted writes and removals left in the arms' folders: temporary `.gen-*`
    folders, and `gen-*` folders without a snapshot (emptied by a removal that a kill cut
    short). Never through a link: a run folder someone sent you may point `arms/x` away."""
    arm_dirs = sorted(p for p in arms_root.glob("*") if p.is_dir() and not p.is_symlink())
    return [
        folder
        for arm_dir in arm_dirs
        for folder in sorted(arm_dir.iterdir())
        if folder.is_dir() and not folder.is_symlink() and _is_leftover(folder)
    ]


def discard(folder: Path) -> None:
    """Remove a `gen-*` folder whole: renamed to a temporary name first, so a kill while its
    files go leaves a folder `leftovers` finds, never a half snapshot under a `gen-*` name."""
    if not folder.name.startswith("."):  # a temporary name already
        trash = folder.with_name(f".{folder.name}.del-{os.getpid()}")
        shutil.rmtree(trash, ignore_errors=True)
        os.rename(folder, trash)
        folder = trash
    shutil.rmtree(folder, ignore_errors=True)


def state_digest(folder: Path) -> str:
    return hashlib.sha256((folder / STATE_FILE).read_bytes()).hexdigest()


def check_recorded(folder: Path, digest: str) -> None:
    """A `SnapshotError` unless the folder's state file has the checksum the run recorded."""
    try:
        data = (folder / STATE_FILE).read_bytes()
    except OSError as error:
        raise SnapshotError(f"snapshot {folder} cannot be read: {error.strerror}") from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise SnapshotError(
            f"snapshot {folder}: {STATE_FILE} does not match the checksum the run "
            "recorded (edited or damaged)"
        )


def checksum_holds(folder: Path, digest: str) -> bool:
    try:
        check_recorded(folder, digest)
    except SnapshotError:
        return False
    return True


def holds_snapshot(folder: Path) -> bool:
    return (folder / STATE_FILE).exists() or (folder / LEGACY_FILE).exists()


def holds_pickle(folder: Path) -> bool:
    return (folder / LEGACY_FILE).exists()


def _is_leftover(folder: Path) -> bool:
    if folder.name.startswith(".gen-"):  # `.gen-N.tmp-PID` being written, `.gen-N.del-PID` removed
        return True
    return folder.name.startswith("gen-") and not holds_snapshot(folder)
