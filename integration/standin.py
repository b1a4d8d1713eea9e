"""A loopback Atlan stand-in for the integration stages and the end-to-end tests.

    python integration/standin.py FILE [--catalog CATALOG.json] [--delay SECONDS]

Prints its port, then serves until killed. It records every lineage POST (one JSON event per
line in FILE) and answers 202, or 503 while FILE.down exists. With a catalog (what a tenant
has crawled: ``{"connections": [...], "assets": [...]}``, entities as Atlan's search returns
them), it also answers pyatlan's index search, and builds assets from the events as Atlan does,
``--delay`` seconds after they arrive: for a job whose namespace names a connection of the
connector, a ``SparkJob`` (``AirflowTask`` for Airflow) ``{connection}/{job}`` and its
``Process`` ``{connection}/{job}/process``, whose inputs and outputs are the crawled assets
the datasets name, or partial assets under the OpenLineage connection when they name none.

A dataset names a crawled asset when its namespace and name are the asset's by the
OpenLineage naming spec (atlan_ext.naming: the stand-in cannot know Atlan's own matching,
which Atlan does not publish; it stands for the spec).
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Tuple

_FIELDS = {"__typeName.keyword": "typeName", "__state": "status", "__guid": "guid"}
_PARTIAL_TYPES = {"s3": "S3Object", "gs": "GCSObject", "abfss": "ADLSObject", "kafka": "KafkaTopic"}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _value(entity: Dict[str, Any], field: str) -> Any:
    key = _FIELDS.get(field, field.removesuffix(".keyword"))
    if key in ("typeName", "status", "guid"):
        return entity.get(key)
    return entity["attributes"].get(key)


def _leaf(clause: Dict[str, Any], entity: Dict[str, Any]) -> bool:
    kind, body = next(iter(clause.items()))
    field, wanted = next(iter(body.items()))
    have = _value(entity, field)
    # Atlan's type names match in any case (pyatlan's own lookups ask for "CONNECTION").
    insensitive = field == "__typeName.keyword" or (
        isinstance(wanted, dict) and wanted.get("case_insensitive")
    )
    if isinstance(wanted, dict):
        wanted = wanted.get("value")

    def same(a: Any, b: Any) -> bool:
        if insensitive and isinstance(a, str) and isinstance(b, str):
            return a.lower() == b.lower()
        return bool(a == b)

    if kind == "term":
        return same(have, wanted)
    if kind == "terms":
        return any(same(have, one) for one in wanted)
    if kind == "prefix":
        return isinstance(have, str) and have.startswith(str(wanted))
    if kind == "bool":
        return _matches(clause, entity)
    raise ValueError(f"the stand-in cannot evaluate {kind!r} queries")


def _matches(query: Dict[str, Any], entity: Dict[str, Any]) -> bool:
    """Whether ``entity`` matches an Elasticsearch bool query as pyatlan's FluentSearch makes."""
    if "bool" not in query:
        return _leaf(query, entity)
    bool_query = query["bool"]
    for key in ("filter", "must"):
        if not all(_leaf(c, entity) for c in bool_query.get(key, [])):
            return False
    if any(_leaf(c, entity) for c in bool_query.get("must_not", [])):
        return False
    should = bool_query.get("should", [])
    need = int(bool_query.get("minimum_should_match", 1 if should else 0))
    return sum(1 for c in should if _leaf(c, entity)) >= need


class Tenant:
    """What the stand-in holds: the catalog, and the assets built from events."""

    def __init__(self, catalog: Dict[str, Any], delay: float) -> None:
        self.connections: List[Dict[str, Any]] = catalog.get("connections", [])
        self.crawled: List[Dict[str, Any]] = catalog.get("assets", [])
        self.delay = delay
        self.built: Dict[str, Tuple[float, Dict[str, Any]]] = {}
        self.lock = threading.Lock()
        self.names = {self._spec_name(a): a for a in self.crawled}

    def _spec_name(self, asset: Dict[str, Any]) -> Optional[Tuple[str, str]]:
        from atlan_ext.naming import name_of_asset

        def view(entity: Optional[Dict[str, Any]]) -> Any:
            if entity is None:
                return None
            fields = {_snake(k): v for k, v in entity["attributes"].items()}
            fields.setdefault("unique_attributes", None)
            return type(entity["typeName"], (SimpleNamespace,), {})(**fields)

        owner = str(asset["attributes"].get("connectionQualifiedName", ""))
        connection = next(
            (c for c in self.connections if c["attributes"]["qualifiedName"] == owner), None
        )
        try:
            return name_of_asset(view(asset), view(connection))
        except ValueError:
            return None

    def entities(self) -> List[Dict[str, Any]]:
        now = time.monotonic()
        with self.lock:
            built = [entity for ready, entity in self.built.values() if ready <= now]
        return self.connections + self.crawled + built

    def receive(self, connector: str, event: Dict[str, Any]) -> None:
        job = event.get("job") or {}
        connection = next(
            (
                c
                for c in self.connections
                if c["attributes"].get("name") == job.get("namespace")
                and c["attributes"].get("connectorName") == connector
            ),
            None,
        )
        if connection is None:
            return  # Atlan drops lineage for a connection it does not have
        owner = connection["attributes"]["qualifiedName"]
        job_name = str(job.get("name"))
        kind = "AirflowTask" if connector.startswith("airflow") else "SparkJob"
        ready = time.monotonic() + self.delay
        with self.lock:
            self._build(ready, kind, f"{owner}/{job_name}", owner, name=job_name)
            process = self._build(
                ready, "Process", f"{owner}/{job_name}/process", owner, name=job_name
            )
            for side in ("inputs", "outputs"):
                have = process["attributes"].setdefault(side, [])
                for dataset in event.get(side) or []:
                    related = self._dataset(ready, owner, dataset)
                    if related["guid"] not in {r["guid"] for r in have}:
                        have.append(related)

    def _build(
        self, ready: float, kind: str, qualified: str, owner: str, **attributes: Any
    ) -> Dict[str, Any]:
        if qualified not in self.built:
            entity = {
                "typeName": kind,
                "guid": f"built-{len(self.built)}",
                "status": "ACTIVE",
                "attributes": {
                    "qualifiedName": qualified,
                    "connectionQualifiedName": owner,
                    **attributes,
                },
            }
            self.built[qualified] = (ready, entity)
        return self.built[qualified][1]

    def _dataset(self, ready: float, owner: str, dataset: Dict[str, Any]) -> Dict[str, Any]:
        namespace, name = str(dataset.get("namespace")), str(dataset.get("name"))
        asset = self.names.get((namespace, name))
        partial = asset is None
        if asset is None:
            scheme = namespace.split(":", 1)[0]
            qualified = f"{owner}/{name.strip('/').replace('.', '/')}"
            kind = _PARTIAL_TYPES.get(scheme, "Table")
            asset = self._build(ready, kind, qualified, owner, name=name, isPartial=True)
        attributes = asset["attributes"]
        return {
            "typeName": asset["typeName"],
            "guid": asset["guid"],
            "uniqueAttributes": {"qualifiedName": attributes["qualifiedName"]},
            "attributes": {"name": attributes.get("name"), "isPartial": partial},
        }

    def search(self, request: Dict[str, Any]) -> Dict[str, Any]:
        dsl = request.get("dsl", {})
        found = [e for e in self.entities() if _matches(dsl.get("query", {}), e)]
        start, size = int(dsl.get("from", 0)), int(dsl.get("size", 20))
        page = found[start : start + size]
        return (
            {"approximateCount": len(found), "entities": page}
            if page
            else {"approximateCount": len(found)}
        )


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("record", type=Path)
    options.add_argument("--catalog", type=Path)
    options.add_argument("--delay", type=float, default=0.0)
    args = options.parse_args()
    catalog = json.loads(args.catalog.read_text()) if args.catalog else {}
    tenant = Tenant(catalog, args.delay)
    record: Path = args.record

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any = None, **headers: str) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in {**headers, "content-length": str(len(data))}.items():
                self.send_header(name, value)
            if body is not None:
                self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.startswith("/api/service/users/current"):
                self._answer(200, {"username": "standin"})
            else:
                self._answer(404, {"message": "no such path on the stand-in"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
            if Path(f"{record}.down").exists():
                self._answer(503, None, **{"Retry-After": "1"})
                return
            if self.path.startswith("/api/meta/search/indexsearch"):
                self._answer(200, tenant.search(body))
                return
            connector = self.path.split("/events/openlineage/", 1)[-1].split("/", 1)[0]
            with record.open("a", encoding="utf-8") as out:
                for event in body if isinstance(body, list) else [body]:
                    out.write(json.dumps({"connector": connector, "event": event}) + "\n")
                    tenant.receive(connector, event)
            self._answer(202)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
