"""Lineage as a picture: boxes in columns, left to right, joined by arrows, as one inline
``<svg>``. Our own drawing, so a notebook needs no JavaScript and no network to show it.

Only SVG presentation attributes are used (no ``<style>``, no ``<marker>``, no script): what
notebook sanitisers (GitHub's, JupyterLab's for untrusted output) keep. The one ``style`` (on
the root: shrink to fit a narrow output) only helps where it is kept.
Every text and attribute value is escaped; a long label is shortened on screen and kept whole
in its tooltip (``<title>``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

BOX_WIDTH = 240
BOX_HEIGHT = 42
ROW_GAP = 12
COLUMN_GAP = 64
PAD = 10
FONT = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif"
TITLE_CHARS = 31  # what fits in a box at 12 px bold
DETAIL_CHARS = 36  # at 11 px
NOTE_CHARS = 38
NOTE_LINES = 3
LINE_GREY = "#8c959f"


@dataclass(frozen=True)
class Box:
    """One box: a title (bold), a detail line under it, its colours, a dashed outline for
    what is only partly known, an optional link, and a note drawn under it (an error)."""

    key: str
    title: str
    detail: str = ""
    fill: str = "#ffffff"
    ink: str = "#1f2328"
    stroke: str = LINE_GREY
    dashed: bool = False
    link: Optional[str] = None
    tooltip: str = ""
    note: str = ""
    note_ink: str = "#cf222e"


def shorten_end(text: str, limit: int) -> str:
    """``text`` to at most ``limit`` characters, keeping its end (a name's most telling part)."""
    return text if len(text) <= limit else "\u2026" + text[-(limit - 1) :]


def shorten(text: str, limit: int) -> str:
    """``text`` to at most ``limit`` characters, keeping its start."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def wrap(text: str, width: int, lines: int) -> List[str]:
    """``text``'s first line, wrapped at spaces into at most ``lines`` lines of ``width``."""
    words = (text.strip().splitlines() or [""])[0].split()
    out: List[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if len(candidate) <= width:
            current = candidate
            continue
        if current:
            out.append(current)
        current = shorten(word, width)
    if current:
        out.append(current)
    if len(out) > lines or len(text.strip().splitlines()) > 1:
        out = out[:lines]
        last = out[-1] if len(out[-1]) < width - 1 else out[-1][: width - 2]
        out[-1] = last + " \u2026"
    return out


def collapse(boxes: Sequence[Box], limit: int, key: str) -> Tuple[List[Box], Dict[str, str]]:
    """At most ``limit`` boxes: past that, the first ``limit - 1`` and a "+ N more" box
    whose tooltip names the others. Also returns where each hidden box's key now points."""
    if len(boxes) <= limit:
        return list(boxes), {}
    shown, hidden = list(boxes[: limit - 1]), boxes[limit - 1 :]
    names = [b.tooltip or b.title for b in hidden]
    tooltip = "\n".join(names[:50]) + (
        f"\n\u2026 and {len(names) - 50} more" if len(names) > 50 else ""
    )
    more = Box(key, f"+ {len(hidden)} more", "hover to list them", fill="#f6f8fa", tooltip=tooltip)
    return [*shown, more], {b.key: key for b in hidden}


def _height(box: Box) -> int:
    return BOX_HEIGHT + (len(wrap(box.note, NOTE_CHARS, NOTE_LINES)) * 14 + 6 if box.note else 0)


def _box(box: Box, x: int, y: int) -> str:
    e = html.escape
    dash = ' stroke-dasharray="5 3"' if box.dashed else ""
    tip = box.tooltip or (f"{box.title}\n{box.detail}" if box.detail else box.title)
    parts = [
        f"<title>{e(tip)}</title>",
        f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6" '
        f'fill="{e(box.fill)}" stroke="{e(box.stroke)}" stroke-width="1.5"{dash}/>',
        f'<text x="{x + 10}" y="{y + 18}" font-size="12" font-weight="600" '
        f'fill="{e(box.ink)}">{e(shorten_end(box.title, TITLE_CHARS))}</text>',
    ]
    if box.detail:
        parts.append(
            f'<text x="{x + 10}" y="{y + 34}" font-size="11" fill="{e(box.ink)}" '
            f'fill-opacity="0.75">{e(shorten(box.detail, DETAIL_CHARS))}</text>'
        )
    for number, line in enumerate(wrap(box.note, NOTE_CHARS, NOTE_LINES) if box.note else []):
        parts.append(
            f'<text x="{x + 2}" y="{y + BOX_HEIGHT + 16 + 14 * number}" font-size="11" '
            f'fill="{e(box.note_ink)}">{e(line)}</text>'
        )
    body = "".join(parts)
    if box.link:
        return f'<a href="{e(box.link)}" target="_blank">{body}</a>'
    return f"<g>{body}</g>"


def draw(
    columns: Sequence[Sequence[Box]],
    edges: Iterable[Tuple[str, str]],
    *,
    label: str,
    limit: int = 8,
) -> str:
    """The picture of ``columns`` (left to right; each top to bottom, at most ``limit`` boxes
    shown) with an arrow for each ``(from_key, to_key)`` edge between columns; an edge within
    one column (a parent above its child) is a dotted line. ``label`` is the picture's
    accessible name."""
    placed: Dict[str, Tuple[int, int, int]] = {}  # key -> x, y, column
    shown_columns: List[List[Box]] = []
    moved: Dict[str, str] = {}
    for number, column in enumerate(columns):
        boxes, hidden = collapse(column, limit, f"more-{number}")
        shown_columns.append(boxes)
        moved.update(hidden)
    heights = [
        sum(_height(b) for b in col) + ROW_GAP * max(len(col) - 1, 0) for col in shown_columns
    ]
    tallest = max(heights, default=BOX_HEIGHT)
    parts: List[str] = []
    for number, (column, height) in enumerate(zip(shown_columns, heights)):
        x = PAD + number * (BOX_WIDTH + COLUMN_GAP)
        y = PAD + (tallest - height) // 2
        for box in column:
            placed[box.key] = (x, y, number)
            parts.append(_box(box, x, y))
            y += _height(box) + ROW_GAP
    lines: List[str] = []
    drawn = set()
    for source, target in edges:
        start, end = placed.get(moved.get(source, source)), placed.get(moved.get(target, target))
        if start is None or end is None or (start, end) in drawn or start == end:
            continue
        drawn.add((start, end))
        lines.append(_edge(start, end))
    width = PAD * 2 + len(shown_columns) * BOX_WIDTH + max(len(shown_columns) - 1, 0) * COLUMN_GAP
    height = tallest + PAD * 2
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(label)}" '
        'style="max-width:100%;height:auto" '
        f'font-family="{html.escape(FONT)}">'
        f"<title>{html.escape(label)}</title>{''.join(lines)}{''.join(parts)}</svg>"
    )


def _edge(start: Tuple[int, int, int], end: Tuple[int, int, int]) -> str:
    (x1, y1, c1), (x2, y2, c2) = start, end
    if c1 == c2:  # a parent above its child: dotted, no arrow
        top, bottom = sorted((y1, y2))
        x = x1 + BOX_WIDTH // 2
        return (
            f'<line x1="{x}" y1="{top + BOX_HEIGHT}" x2="{x}" y2="{bottom}" '
            f'stroke="{LINE_GREY}" stroke-width="1.5" stroke-dasharray="2 3"/>'
        )
    forward = c2 > c1
    sx = x1 + BOX_WIDTH if forward else x1
    tx = x2 if forward else x2 + BOX_WIDTH
    sy, ty = y1 + BOX_HEIGHT // 2, y2 + BOX_HEIGHT // 2
    bend = (tx - sx) // 2
    tip = tx - 1 if forward else tx + 1
    head = 7 if forward else -7
    return (
        f'<path d="M{sx},{sy} C{sx + bend},{sy} {tx - bend},{ty} {tip - head},{ty}" '
        f'fill="none" stroke="{LINE_GREY}" stroke-width="1.5"/>'
        f'<polygon points="{tip},{ty} {tip - head},{ty - 4} {tip - head},{ty + 4}" '
        f'fill="{LINE_GREY}"/>'
    )
