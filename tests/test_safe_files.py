"""The outbox's own files against another local user: no link is ever followed, what we own
is made private, and what another user owns or may write to is refused with the path, the
owner and the fix, while lineage goes on in memory."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Callable, List

import pytest
from test_cli import cli

from atlan_ext import Job, OutboxError, lineage_run
from atlan_ext.outbox import Outbox

OTHER = 65534  # nobody
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="making a file another user's takes root (CI runs as root)",
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def dangling_db(home: Path) -> None:
    (home / "outbox.db").symlink_to(home / "elsewhere.db")


def linked_db(home: Path) -> None:
    (home / "victim.db").write_bytes(b"")
    (home / "outbox.db").symlink_to(home / "victim.db")


def linked_wal(home: Path) -> None:
    (home / "outbox.db-wal").symlink_to(home / "victim")


def fifo_db(home: Path) -> None:
    os.mkfifo(home / "outbox.db")


def others_db(home: Path) -> None:
    (home / "outbox.db").write_bytes(b"")
    (home / "outbox.db").chmod(0o666)
    os.chown(home / "outbox.db", OTHER, OTHER)


def others_shm(home: Path) -> None:
    (home / "outbox.db-shm").write_bytes(b"")
    os.chown(home / "outbox.db-shm", OTHER, OTHER)


def others_folder(home: Path) -> None:
    home.chmod(0o700)
    os.chown(home, OTHER, OTHER)


REFUSED = [
    pytest.param(dangling_db, "is a symbolic link", id="dangling outbox.db link"),
    pytest.param(linked_db, "is a symbolic link", id="outbox.db linked to a file"),
    pytest.param(linked_wal, "outbox.db-wal is a symbolic link", id="-wal link"),
    pytest.param(fifo_db, "is not a regular file", id="outbox.db a fifo"),
    pytest.param(others_db, "is owned by nobody", marks=as_root, id="outbox.db of another user"),
    pytest.param(others_shm, "-shm is owned by nobody", marks=as_root, id="-shm of another user"),
    pytest.param(others_folder, "folder", marks=as_root, id="folder of another user"),
]


class TestRefused:
    @pytest.mark.parametrize(("plant", "shown"), REFUSED)
    def test_outbox_error_names_path_owner_and_fix(
        self, plant: Callable[[Path], None], shown: str, tmp_path: Path
    ) -> None:
        """Each planted file or folder is refused: the path, what is wrong, and the fix."""
        home = tmp_path / "planted"
        home.mkdir()
        plant(home)
        with pytest.raises(OutboxError) as caught:
            Outbox(home / "outbox.db")
        message = str(caught.value)
        assert shown in message
        assert str(home) in message
        assert "ATLAN_EXT_HOME" in message
        assert not (home / "elsewhere.db").exists()  # a dangling link's target is not made
        if (home / "victim.db").exists():
            assert (home / "victim.db").read_bytes() == b""

    @as_root
    def test_named_owner_of_a_folder(self, tmp_path: Path) -> None:
        """A folder another user owns: refused, naming that user, you, and chown as a fix."""
        home = tmp_path / "planted"
        home.mkdir()
        others_folder(home)
        with pytest.raises(OutboxError, match=r"owned by nobody, not by you \(root\).*chown"):
            Outbox(home / "outbox.db")

    def test_lineage_goes_on_in_memory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A run whose outbox is refused still runs and ends; one warning names the path."""
        home = tmp_path / "planted"
        home.mkdir()
        linked_db(home)
        monkeypatch.setenv("ATLAN_EXT_HOME", str(home))
        with caplog.at_level(logging.WARNING, logger="atlan_ext"):
            with lineage_run(Job("c", "j"), client="local") as run:
                pass
        assert run.ended
        warnings = [r.getMessage() for r in caplog.records if "symbolic link" in r.getMessage()]
        assert len(warnings) == 1
        assert "kept in memory" in warnings[0]
        assert (home / "victim.db").read_bytes() == b""

    def test_command_says_one_line(self, tmp_path: Path) -> None:
        """atlan-lineage status on a planted outbox: one line, status 1, no traceback."""
        linked_db(tmp_path)
        done = cli("status", home=tmp_path)
        assert done.returncode == 1
        assert "is a symbolic link" in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


class TestFixed:
    @pytest.mark.parametrize("folder_mode", [0o777, 0o775, 0o757])
    def test_our_open_folder_is_made_private(self, folder_mode: int, tmp_path: Path) -> None:
        """Our own folder that others may write to is made private, with one warning."""
        home = tmp_path / "planted"
        home.mkdir()
        home.chmod(folder_mode)
        if os.geteuid() == 0:  # root's folder is "ours" when we are root
            assert home.stat().st_uid == 0
        Outbox(home / "outbox.db").close()
        assert mode(home) == folder_mode & 0o700

    @pytest.mark.parametrize("names", [["outbox.db"], ["outbox.db", "outbox.db-wal"]])
    def test_our_open_files_are_made_0600(self, names: List[str], tmp_path: Path) -> None:
        """Our own outbox files readable or writable by others are made 0600."""
        for name in names:
            (tmp_path / name).write_bytes(b"")
            (tmp_path / name).chmod(0o666)
        outbox = Outbox(tmp_path / "outbox.db")
        for name in names:  # SQLite may have taken an empty -wal back: gone is private too
            assert not (tmp_path / name).exists() or mode(tmp_path / name) == 0o600
        assert mode(tmp_path / "outbox.db") == 0o600
        outbox.close()

    def test_a_linked_folder_is_followed(self, tmp_path: Path) -> None:
        """The folder itself may be a link (a data folder on another disk): its target is
        judged, and used."""
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        (tmp_path / "planted").symlink_to(real)
        Outbox(tmp_path / "planted" / "outbox.db").close()
        assert (real / "outbox.db").is_file()
