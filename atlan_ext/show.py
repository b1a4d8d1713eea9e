"""An asset's lineage read back from Atlan and drawn as a run is: :func:`show_lineage` (and
``%lineage show ASSET`` in a notebook).

It asks pyatlan's lineage-list API (``client.asset.get_lineage_list``) for the asset's
upstream and downstream to a depth, with each asset's immediate neighbours, and draws the
assets in columns by their distance from it: partial assets (known to Atlan only through
lineage) dashed, as in Atlan's UI, and each box a link to the asset in Atlan. pyatlan is
imported only when this runs.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from atlan_ext import _picture
from atlan_ext.events import Dataset, as_dataset
from atlan_ext.exceptions import InvalidClientError, InvalidOptionError, LineageReadError
from atlan_ext.send import is_async_client, redact, secrets_of

__all__ = ["LineageView", "Node", "show_lineage"]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ATTRIBUTES = ["name", "qualifiedName", "isPartial", "connectorName"]
_PAGE = 50
_DIRECTIONS = ("both", "upstream", "downstream")


@dataclass(frozen=True)
class Node:
    """One asset in the lineage: ``depth`` is its distance from the asset asked about
    (negative upstream, 0 for the asset itself)."""

    guid: str
    type_name: str
    name: str
    qualified_name: str
    depth: int
    partial: bool = False
    link: Optional[str] = None

    @property
    def is_process(self) -> bool:
        """True for a process (a job run between assets) rather than a data asset."""
        return self.type_name.endswith("Process")


@dataclass
class LineageView:
    """An asset's lineage as read from Atlan: its nodes and ``(upstream, downstream)`` GUID
    edges. Shows itself as a picture in a notebook, as Markdown, and as text."""

    asset: Node
    nodes: List[Node]
    edges: List[Tuple[str, str]] = field(default_factory=list)

    def _hops(self) -> Iterator[Tuple[str, int, List[Node]]]:
        """Each column but the asset's own: its side, how many hops away, its nodes."""
        for column in self._columns():
            depth = column[0].depth
            if depth:
                yield ("upstream" if depth < 0 else "downstream"), abs(depth), column

    def _columns(self) -> List[List[Node]]:
        depths = sorted({node.depth for node in self.nodes})
        return [
            sorted((n for n in self.nodes if n.depth == d), key=lambda n: (n.name, n.guid))
            for d in depths
        ]

    def picture(self) -> str:
        """The lineage as inline SVG."""
        columns = [
            [_box(node, node.guid == self.asset.guid) for node in c] for c in self._columns()
        ]
        label = f"lineage of {self.asset.name} in Atlan: {len(self.nodes) - 1} related asset(s)"
        return _picture.draw(columns, self.edges, label=label)

    def _repr_html_(self) -> str:
        e = html.escape
        name = e(self.asset.name)
        if self.asset.link:
            name = f'<a href="{e(self.asset.link)}" target="_blank">{name}</a>'
        return (
            '<div class="atlan-ext-lineage">'
            f"<b>{name}</b> <small>{e(self.asset.type_name)} \u00b7 "
            f"<code>{e(self.asset.qualified_name)}</code> \u00b7 lineage from Atlan: "
            f"{self._counts()}</small><div>{self.picture()}</div></div>"
        )

    def _counts(self) -> str:
        up = sum(1 for n in self.nodes if n.depth < 0)
        down = sum(1 for n in self.nodes if n.depth > 0)
        return f"{up} upstream, {down} downstream"

    def __repr__(self) -> str:
        lines = [
            f"lineage of {self.asset.name} ({self.asset.type_name}, "
            f"{self.asset.qualified_name}) from Atlan: {self._counts()}"
        ]
        for side, hops, column in self._hops():
            names = ", ".join(
                f"{n.name} ({n.type_name}{', partial' if n.partial else ''})" for n in column
            )
            lines.append(f"  {side} {hops}: {names}")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        lines = [f"lineage of {_code(self.asset.name)} from Atlan: {self._counts()}", ""]
        for side, hops, column in self._hops():
            names = ", ".join(
                f"[{_code(n.name)}]({n.link})" if n.link else _code(n.name) for n in column
            )
            lines.append(f"- {side} {hops}: {names}")
        return "\n".join(lines) + "\n"


def _code(text: str) -> str:
    text = " ".join(text.split())
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks} {text} {ticks}"


def _box(node: Node, centre: bool) -> _picture.Box:
    if centre:
        fill, ink, stroke = "#0969da", "#ffffff", "#0969da"
    elif node.is_process:
        fill, ink, stroke = "#ddf4ff", "#1f2328", "#54aeff"
    else:
        fill, ink, stroke = "#ffffff", "#1f2328", _picture.LINE_GREY
    detail = node.type_name + (" \u00b7 partial" if node.partial else "")
    return _picture.Box(
        node.guid,
        node.name,
        detail,
        fill=fill,
        ink=ink,
        stroke=stroke,
        dashed=node.partial,
        link=node.link,
        tooltip=f"{node.name}\n{node.type_name}\n{node.qualified_name}",
    )


def show_lineage(
    asset: object,
    *,
    client: Any = None,
    depth: int = 2,
    direction: str = "both",
) -> LineageView:
    """Read ``asset``'s lineage from Atlan and return it as a :class:`LineageView`, which a
    notebook shows as a picture::

        show_lineage("default/snowflake/1700000000/DB/PUBLIC/ORDERS_DAILY")

    ``asset``: a GUID, a qualifiedName, or an OpenLineage dataset (a ``Dataset`` or a URI,
    found by its name). ``client``: a sync pyatlan ``AtlanClient``; by default one from
    ``ATLAN_BASE_URL`` and ``ATLAN_API_KEY``. ``depth``: hops each way, as Atlan counts
    them. ``direction``: ``"both"``, ``"upstream"`` or ``"downstream"``.

    Raises :class:`~atlan_ext.exceptions.LineageReadError` when there is no tenant, no such
    asset, or Atlan answers with an error (or not at all)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 100:
        raise InvalidOptionError(f"depth must be a whole number from 1 to 100, got {depth!r}")
    if direction not in _DIRECTIONS:
        raise InvalidOptionError(
            f"direction must be one of {', '.join(_DIRECTIONS)}, got {direction!r}"
        )
    client = _client(client)
    try:
        centre = _find(client, asset)
        nodes: Dict[str, Node] = {centre.guid: centre}
        edges: Set[Tuple[str, str]] = set()
        for side in ("upstream", "downstream"):
            if direction in (side, "both"):
                _read(client, centre, side, depth, nodes, edges)
    except LineageReadError:
        raise
    except Exception as error:  # pyatlan's and httpx's errors, told without the API token
        text = redact(f"{type(error).__name__}: {error}", secrets_of(client))
        raise LineageReadError(
            f"Atlan could not give the lineage of {_shown(asset)}: {text}"
        ) from None
    kept = [(a, b) for a, b in sorted(edges) if a in nodes and b in nodes]
    return LineageView(centre, list(nodes.values()), kept)


def _shown(asset: object) -> str:
    return repr(asset.uri if isinstance(asset, Dataset) else asset)


def _client(client: Any) -> Any:
    if client is None:
        from atlan_ext.send import client_from_env

        client = client_from_env()
        if client is None:
            raise LineageReadError(
                "no Atlan tenant to read lineage from: set ATLAN_BASE_URL and ATLAN_API_KEY, "
                "or pass client=AtlanClient(...)"
            )
    if (
        is_async_client(client)
        or not hasattr(client, "asset")
        or not hasattr(client.asset, "get_lineage_list")
    ):
        raise InvalidClientError(
            f"client must be a sync pyatlan AtlanClient, got {type(client).__name__}"
        )
    return client


def _link(client: Any, guid: str) -> Optional[str]:
    base = str(getattr(client, "base_url", "") or "")
    if not base.startswith(("http://", "https://")):
        return None
    return f"{base.rstrip('/')}/assets/{guid}/overview"


def _node(client: Any, asset: Any, depth: int) -> Node:
    return Node(
        guid=str(asset.guid),
        type_name=str(asset.type_name),
        name=str(asset.name or asset.qualified_name or asset.guid),
        qualified_name=str(asset.qualified_name or ""),
        depth=depth,
        partial=bool(asset.attributes is not None and asset.attributes.is_partial),
        link=_link(client, str(asset.guid)),
    )


def _find(client: Any, asset: object) -> Node:
    """The asset asked about, found in Atlan by GUID, qualifiedName or dataset name."""
    from pyatlan.model.assets import Asset
    from pyatlan.model.fluent_search import FluentSearch

    dataset: Optional[Dataset] = None
    if isinstance(asset, Dataset) or (isinstance(asset, str) and "://" in asset):
        dataset = as_dataset(asset)
        term = Asset.NAME.eq(re.split(r"[./]", dataset.name.rstrip("/"))[-1], case_insensitive=True)
    elif isinstance(asset, str) and _GUID.match(asset.strip()):
        term = Asset.GUID.eq(asset.strip())
    elif isinstance(asset, str) and asset.strip():
        term = Asset.QUALIFIED_NAME.eq(asset.strip())
    else:
        raise LineageReadError(
            f"cannot look up {asset!r} in Atlan: give a GUID, a qualifiedName, a Dataset or "
            "a dataset URI"
        )
    search = FluentSearch().where(term).page_size(20)
    for attribute in _ATTRIBUTES:
        search = search.include_on_results(attribute)
    found = [a for a in client.asset.search(search.to_request()).current_page() if a.guid]
    if dataset is not None:
        found = [a for a in found if _names_dataset(str(a.qualified_name or ""), dataset)]
    if not found:
        raise LineageReadError(
            f"no asset {_shown(asset)} in Atlan"
            + (
                ": give its qualifiedName or GUID (Atlan's names for a dataset may differ)"
                if dataset is not None
                else ": check the qualifiedName or GUID (Atlan's asset page shows both)"
            )
        )
    return _node(client, found[0], 0)


def _names_dataset(qualified_name: str, dataset: Dataset) -> bool:
    """True when an Atlan qualifiedName ends with the dataset's name (its parts joined by
    ``/``, as Atlan joins database, schema and table)."""
    parts = [p for p in re.split(r"[./]", dataset.name) if p]
    return qualified_name.lower().endswith("/" + "/".join(parts).lower())


def _read(
    client: Any,
    centre: Node,
    side: str,
    depth: int,
    nodes: Dict[str, Node],
    edges: Set[Tuple[str, str]],
) -> None:
    from pyatlan.model.enums import LineageDirection
    from pyatlan.model.lineage import LineageListRequest

    request = LineageListRequest.create(guid=centre.guid)
    request.depth = depth
    request.direction = (
        LineageDirection.UPSTREAM if side == "upstream" else LineageDirection.DOWNSTREAM
    )
    request.immediate_neighbors = True
    request.size = _PAGE
    request.attributes = list(_ATTRIBUTES)
    sign = -1 if side == "upstream" else 1
    for asset in client.asset.get_lineage_list(request):
        if not asset.guid or asset.guid == centre.guid:
            continue
        nodes.setdefault(str(asset.guid), _node(client, asset, sign * int(asset.depth or 1)))
        for ref in asset.immediate_upstream or []:
            edges.add((str(ref.guid), str(asset.guid)))
        for ref in asset.immediate_downstream or []:
            edges.add((str(asset.guid), str(ref.guid)))
