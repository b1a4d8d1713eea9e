"""The outbox's own files, guarded as ssh guards its keys.

Another local user must not be able to read or change our lineage, nor make us write where
they choose. So the outbox folder must be ours (or root's) and writable by no one else, and
its files (``outbox.db`` and SQLite's ``-wal``, ``-shm`` and ``-journal``) ours, regular files,
never symbolic links, and private. What we own we fix (a warning says so); anything else is
refused with :class:`OutboxError`, naming the path, its owner and the fix (the caller then
keeps lineage in memory). On Windows, where ownership and modes work differently, only the
link and file-kind checks apply.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from atlan_ext._state import say_once
from atlan_ext.exceptions import OutboxError

__all__ = ["guard_file", "guard_folder"]

_OWN_FOLDER = "set ATLAN_EXT_HOME to a folder of your own"


def owner(uid: int) -> str:
    """A user's name (``uid N`` where it has none)."""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def guard_folder(folder: Path) -> None:
    """Refuse a folder another user owns (root aside) or, unless it is ours, one that others
    may write to; make ours private (``go-rwx``) when others may write to it."""
    if not hasattr(os, "getuid"):
        return
    info = folder.stat()  # the folder may be a link (~/.local/share elsewhere): its target
    me = os.getuid()
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid not in (me, 0):
        raise OutboxError(
            f"the outbox folder {folder} is owned by {owner(info.st_uid)}, not by you "
            f"({owner(me)}): they could read or change your lineage; {_OWN_FOLDER}, or have "
            f"it given to you (chown {owner(me)} {folder})"
        )
    if not mode & 0o022:
        return
    if info.st_uid != me:
        raise OutboxError(
            f"the outbox folder {folder} (owned by {owner(info.st_uid)}) is writable by other "
            f"users (mode {mode:04o}): they could swap the outbox's files; {_OWN_FOLDER}, or "
            f"have its owner run chmod go-w {folder}"
        )
    folder.chmod(mode & 0o700)  # ours: made private, as when we create it
    say_once(
        f"folder-mode:{folder}",
        "atlan_ext: the outbox folder %s was writable by other users (mode %04o); made "
        "private (%04o)",
        folder,
        mode,
        mode & 0o700,
    )


def guard_file(path: Path, *, create: bool) -> None:
    """Refuse a link, anything but a regular file, or a file another user owns; make ours
    0600. A missing file is created 0600 when ``create`` (never through a link: ``O_EXCL``
    and ``O_NOFOLLOW``), else left missing."""
    try:
        info = path.lstat()  # never follows a link
    except FileNotFoundError:
        if not create:
            return
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            os.close(os.open(path, flags, 0o600))
            return
        except FileExistsError:  # made meanwhile (or a link planted meanwhile): judged below
            info = path.lstat()
    fix = f"remove it (rm {path}) or {_OWN_FOLDER}"
    if stat.S_ISLNK(info.st_mode):
        raise OutboxError(
            f"{path} is a symbolic link (to {os.readlink(path)}): the outbox never follows "  # noqa: PTH115
            f"links for its own files; {fix}"
        )
    if stat.S_ISDIR(info.st_mode):
        raise OutboxError(
            f"the outbox path {path} is a folder: move it away or set ATLAN_EXT_HOME to "
            "another folder"
        )
    if not stat.S_ISREG(info.st_mode):
        raise OutboxError(f"{path} is not a regular file; {fix}")
    if not hasattr(os, "getuid"):
        return
    if info.st_uid != os.getuid():
        raise OutboxError(
            f"{path} is owned by {owner(info.st_uid)}, not by you ({owner(os.getuid())}): "
            f"they could read or change your lineage; {fix}"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        path.chmod(0o600)  # ours: made private
        say_once(
            f"file-mode:{path}",
            "atlan_ext: %s could be read or written by other users (mode %04o); made "
            "private (0600)",
            path,
            mode,
        )
