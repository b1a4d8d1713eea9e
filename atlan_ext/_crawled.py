"""What a tenant has crawled under a dataset's name: the crawled assets of the name's last
part, named by the OpenLineage naming spec, so a user sees which name would link (used by
:func:`atlan_ext.receipt.verify` for a partial dataset and by ``atlan-lineage check``)."""

from __future__ import annotations

from typing import Any, List, Tuple

from atlan_ext._catalog import Catalog, status_of
from atlan_ext.events import dataset_uri
from atlan_ext.naming import SOURCES, name_of_asset

__all__ = ["HIDDEN", "crawled_match", "leaf_of", "spec_names"]

#: Why a search may not show an asset that exists.
HIDDEN = "or the API token's personas and purposes do not let it see it"


def leaf_of(name: str, scheme: str) -> str:
    """The last part of a dataset's name, as its asset is named: a table's name, an object's
    file name."""
    if scheme in ("s3", "gs", "abfss", "file"):
        return name.rstrip("/").rsplit("/", 1)[-1]
    return name.split(".")[-1]


def spec_names(catalog: Catalog, connector: str, leaf: str) -> List[Tuple[str, str]]:
    """``(uri, qualified name)`` by the naming spec of the crawled assets named ``leaf``."""
    candidates = catalog.crawled(connector, leaf)[:5]
    hosts = catalog.connections(
        [str(c.connection_qualified_name) for c in candidates if c.connection_qualified_name]
    )
    found = []
    for asset in candidates:
        try:
            namespace, name = name_of_asset(asset, hosts.get(str(asset.connection_qualified_name)))
        except Exception:  # noqa: S112 - an asset without the attributes names nothing
            continue
        found.append((dataset_uri(namespace, name), str(asset.qualified_name)))
    return found


def crawled_match(client: Any, uri: str) -> str:
    """What a tenant has for dataset ``uri``: the crawled asset it would link to, the crawled
    assets of its name (with their spec names) when none matches, or that none is visible."""
    from atlan_ext.events import Dataset

    dataset = Dataset.parse(uri)
    source = SOURCES.get(dataset.namespace.split(":", 1)[0])
    if source is None:
        return "Atlan crawls no source of this scheme"
    leaf = leaf_of(dataset.name, source.scheme)
    try:
        names = spec_names(Catalog(client), source.connector, leaf)
    except Exception as error:
        status = status_of(error)
        return (
            f"could not search Atlan ({type(error).__name__}{f', HTTP {status}' if status else ''})"
        )
    for spec, qualified in names:
        if spec.lower() == dataset.uri.lower():
            return f"links to the crawled asset {qualified}"
    if names:
        listed = " or ".join(spec for spec, _ in names)
        return (
            f"matches no crawled asset; crawled {source.connector} assets named {leaf!r}: {listed}"
        )
    visible = f"no crawled {source.connector} asset named {leaf!r} is visible ({HIDDEN})"
    return f"{visible}: it will be partial"
