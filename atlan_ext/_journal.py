"""The hand-off journal: a memory-mapped file per process where the job's thread leaves each
event before the sender stores it in the outbox.

Writing to a shared memory map is a copy into the operating system's page cache: no system
call, so the job's thread never gives up the GIL (and never waits to get it back from a busy
sender), yet the bytes survive ``kill -9`` of the process (not a power cut: the outbox's own
WAL makes the same trade). The sender moves each record into the outbox and marks it done;
whoever opens the outbox next (a job, ``replay``, ``status``) takes in the records that a dead
process left pending.

Record layout, 12-byte header then the payload (JSON ``{"c": connector, "l": lifecycle,
"e": event}``)::

    state (1: pending, 2: done; 0 ends the chain) | checksum kind (1) | 2 spare | length (4)
    | checksum (4)

The checksum is Adler-32 (kind 1): no tables, so a job's first hand-off after other work
fetches a few cache lines for it, where CRC-32's tables took about 140. Records of earlier
releases (kind 0) carry a CRC-32, and are read as such.

An append writes the payload, then a zero header after it (the new end of the chain), then
its length and checksum, and its state byte last: a record cut short by a kill reads as the end.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import struct
import threading
import uuid
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from atlan_ext._processes import HOST, pid_alive
from atlan_ext._state import SHIELD

__all__ = ["Journal", "pending_records", "writer_pid"]

_FIRST_SIZE = 1024 * 1024  # allocated up front: a page of a map that the disk cannot back
_LAST_SIZE = 64 * 1024 * 1024  # would kill the process (SIGBUS), so the file is never sparse
_HEADER = struct.Struct("<BB2xII")
_SIZES = struct.Struct("<II")  # the header's length and checksum, written before its state
_NO_HEADER = bytes(_HEADER.size)  # where the next record starts: none yet
_END, _PENDING, _DONE = 0, 1, 2
_ADLER32 = 1  # the checksum kind written (0: CRC-32, by earlier releases)
# The file names: "journal2-" for records with a checksum kind (written now), "journal-" for
# those of earlier releases (CRC-32, read still). An earlier release looks for "journal-"
# files only, so it never takes a newer journal for a broken one and deletes it.
_PREFIX = "journal2-"
_PREFIXES = (_PREFIX, "journal-")
# One encoder, not one per call as json.dumps; ASCII, compact: the outbox stores events alike.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
# A record's start for each (connector, lifecycle) seen: {"c":...,"l":...,"e":
_HEADS: Dict[Tuple[str, Optional[str]], str] = {}

Record = Tuple[str, Optional[str], Dict[str, Any]]  # connector, lifecycle state, event


class Journal:
    """This process's journal beside one outbox. Thread-safe; appends never block on I/O
    (after the first, which creates the file)."""

    def __init__(self, folder: os.PathLike[str] | str) -> None:
        self.folder = Path(folder)
        name = f"{_PREFIX}{HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}.bin"
        self.path = self.folder / name
        self._lock = threading.Lock()
        self._map: Optional[mmap.mmap] = None
        self._position = 0
        self._pending = 0
        self._broken = False
        self._handle = -1

    def _open(self) -> Optional[mmap.mmap]:
        if self._map is None and not self._broken:
            try:
                if not self.folder.is_dir():
                    self.folder.mkdir(parents=True, exist_ok=True)
                    self.folder.chmod(0o700)
                self._handle = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                _allocate(self._handle, 0, _FIRST_SIZE)
                self._map = mmap.mmap(self._handle, _FIRST_SIZE)
            except (OSError, ValueError):
                self._broken = True  # the caller stores in the outbox directly
        return self._map

    def _grow(self, memory: mmap.mmap, needed: int) -> bool:
        """Make room for ``needed`` bytes (allocated first, never sparse); False if the disk
        or the size limit says no."""
        size = len(memory)
        new = size
        while new < needed and new < _LAST_SIZE:
            new *= 2
        if new < needed:
            return False
        try:
            _allocate(self._handle, size, new)
            memory.resize(new)
        except (OSError, ValueError, SystemError):
            return False
        return True

    def append(self, connector: str, lifecycle: Optional[str], text: str) -> int:
        """Leave an event (``text``: compact ASCII JSON) in the journal: its record's offset,
        or -1 when the journal cannot take it (no file, or full: the caller then stores it in
        the outbox itself)."""
        head = _HEADS.get((connector, lifecycle))
        if head is None:
            head = f'{{"c":{_ENCODER.encode(connector)},"l":{_ENCODER.encode(lifecycle)},"e":'
            if len(_HEADS) < 64:
                _HEADS[(connector, lifecycle)] = head
        payload = f"{head}{text}}}".encode()
        with SHIELD, self._lock:
            memory = self._map if self._map is not None else self._open()
            start = self._position
            end = start + _HEADER.size + len(payload)
            if memory is None:
                return -1
            if end + _HEADER.size > len(memory) and not self._grow(memory, end + _HEADER.size):
                return -1
            memory[start + _HEADER.size : end] = payload
            memory[end : end + _HEADER.size] = _NO_HEADER
            _SIZES.pack_into(memory, start + 4, len(payload), zlib.adler32(payload))
            memory[start + 1] = _ADLER32
            memory[start] = _PENDING
            self._position = end
            self._pending += 1
            return start

    def done(self, offset: int) -> None:
        """The record at ``offset`` is in the outbox (or delivered): no recovery needs it.
        When none is pending, the next append starts again at the beginning."""
        if offset < 0:
            return
        with SHIELD, self._lock:
            memory = self._map
            if memory is None or memory[offset] != _PENDING:
                return
            memory[offset] = _DONE
            self._pending -= 1
            if self._pending == 0:
                memory[0 : _HEADER.size] = _NO_HEADER
                self._position = 0

    def close(self) -> None:
        """At a clean exit, once everything is in the outbox: the file goes."""
        with SHIELD, self._lock:
            if self._map is None:
                return
            pending = self._pending
            self._map.close()
            self._map = None
            with contextlib.suppress(OSError):
                os.close(self._handle)
            if pending == 0:
                with contextlib.suppress(OSError):
                    self.path.unlink()


def _allocate(handle: int, start: int, end: int) -> None:
    """Give the file real blocks from ``start`` to ``end`` (zeros written: portable, and a
    full disk says so here, as an OSError, instead of later, as a SIGBUS)."""
    block = bytes(64 * 1024)
    position = os.lseek(handle, start, os.SEEK_SET)
    while position < end:
        written = os.write(handle, block[: min(len(block), end - position)])
        if written <= 0:
            raise OSError("no space")
        position += written


def _records(data: bytes) -> Iterator[Record]:
    position = 0
    while position + _HEADER.size <= len(data):
        state, kind, length, checksum = _HEADER.unpack_from(data, position)
        if state not in (_PENDING, _DONE):
            return
        start = position + _HEADER.size
        payload = data[start : start + length]
        check = zlib.adler32 if kind == _ADLER32 else zlib.crc32
        if len(payload) != length or check(payload) != checksum:
            return
        if state == _PENDING:
            try:
                record = json.loads(payload)
                yield record["c"], record["l"], record["e"]
            except (ValueError, KeyError, TypeError):
                return
        position = start + length


def pending_records(folder: os.PathLike[str] | str) -> List[Tuple[Path, List[Record]]]:
    """The pending records of journals left by processes of this host that are gone, file by
    file (the caller stores them in the outbox, then removes the file)."""
    found: List[Tuple[Path, List[Record]]] = []
    try:
        entries = [
            path for prefix in _PREFIXES for path in Path(folder).glob(f"{prefix}{HOST}-*.bin")
        ]
    except OSError:
        return found
    for path in entries:
        pid = writer_pid(path)
        if pid is None or pid_alive(pid):
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found.append((path, list(_records(data))))
    return found


def writer_pid(path: os.PathLike[str] | str) -> Optional[int]:
    """The id of the process of this host that wrote the journal at ``path`` (from its name),
    or ``None`` for a file that is not one of this host's journals."""
    name = Path(path).name
    for prefix in _PREFIXES:
        if name.startswith(f"{prefix}{HOST}-"):
            pid_text = name[len(prefix) + len(HOST) + 1 :].split("-", 1)[0]
            return int(pid_text) if pid_text.isdigit() else None
    return None
