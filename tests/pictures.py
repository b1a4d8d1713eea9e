"""Look at what a notebook shows: a page of a notebook's outputs (as a frontend renders
them: HTML first, else text), screenshotted by headless Chromium (Debian's ``chromium``), and
the PNG read back with the standard library to count the colours in it.

Set ``ATLAN_EXT_DOCS=1`` to also copy the screenshots to ``docs/`` (the README shows them)."""

from __future__ import annotations

import html
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any, List, Optional, Tuple

DOCS = Path(__file__).resolve().parent.parent / "docs"
Pixel = Tuple[int, int, int]
WRAP = ' style="white-space:pre-wrap"'


def chromium() -> Optional[str]:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def notebook_page(notebook: Any, title: str) -> str:
    """The notebook's code cells and outputs as one HTML page, as JupyterLab orders them."""
    parts = [f"<h3>{html.escape(title)}</h3>"]
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        parts.append(
            '<pre style="background:#f6f8fa;padding:6px;margin:8px 0 2px;white-space:pre-wrap">'
            f"{html.escape(cell.source)}</pre>"
        )
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data:
                parts.append(f"<div>{data['text/html']}</div>")
            elif "text/plain" in data:
                parts.append(f"<pre{WRAP}>{html.escape(data['text/plain'])}</pre>")
            elif output.get("output_type") == "stream":
                parts.append(f"<pre{WRAP}>{html.escape(output['text'])}</pre>")
    return page("".join(parts))


def page(body: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:sans-serif;font-size:14px;margin:16px;background:#fff">'
        f"{body}</body></html>"
    )


def screenshot(document: str, out: Path, size: Tuple[int, int] = (1200, 900)) -> Path:
    """Render ``document`` with headless Chromium (no network, a fresh profile) to ``out``."""
    binary = chromium()
    assert binary is not None
    with tempfile.TemporaryDirectory(prefix="atlan-ext-chromium-") as folder:
        source = Path(folder) / "page.html"
        source.write_text(document, encoding="utf-8")
        profile = Path(folder) / "profile"
        profile.mkdir()
        done = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={out}",
                f"--window-size={size[0]},{size[1]}",
                source.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert out.exists(), done.stderr[-2000:]
    if os.environ.get("ATLAN_EXT_DOCS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(out, DOCS / out.name)
    return out


def read_png(path: Path) -> Tuple[int, int, List[List[Pixel]]]:
    """Width, height and RGB rows of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks += body
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8, depth
    assert colour in (2, 6), colour
    step = 3 if colour == 2 else 4
    raw = zlib.decompress(chunks)
    stride = width * step
    rows: List[List[Pixel]] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up = previous[i]
            corner = previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + best) & 0xFF
        rows.append([(line[x], line[x + 1], line[x + 2]) for x in range(0, stride, step)])
        previous = line
    return width, height, rows


def count(rows: List[List[Pixel]], colour: str, tolerance: int = 6) -> int:
    """How many pixels are ``colour`` (``#rrggbb``), give or take ``tolerance`` a channel."""
    want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(
        1
        for row in rows
        for pixel in row
        if all(abs(a - b) <= tolerance for a, b in zip(pixel, want))
    )
