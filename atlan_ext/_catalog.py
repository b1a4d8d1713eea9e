"""Atlan's search, as ``verify`` and the naming lint ask it: one page per question, within
Atlan's budget of 400 requests a minute, through pyatlan's own ``FluentSearch``.

Only the first page of each answer is read (``current_page()``): each question is one request,
and a page of 20 holds every answer these questions have. Search results follow the token's
personas and purposes, so "not found" may mean "not visible to this token".
"""

from __future__ import annotations

import collections
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence

__all__ = ["JOB_TYPES", "SQL_TYPES", "Catalog", "relation_name", "status_of"]

#: The asset types Atlan creates for an OpenLineage job, by connector.
JOB_TYPES = ("SparkJob", "AirflowTask", "AirflowDag", "FlowControlOperation")
#: The crawled asset types a table-like OpenLineage dataset may link to.
SQL_TYPES = ("Table", "View", "MaterialisedView", "SnowflakeDynamicTable")
_OBJECT_TYPES = {"s3": "S3Object", "gcs": "GCSObject", "adls": "ADLSObject", "kafka": "KafkaTopic"}
_PAGE = 20


def status_of(error: BaseException) -> Optional[int]:
    """The HTTP status pyatlan's error carries, if any."""
    status = getattr(getattr(error, "error_code", None), "http_error_code", None)
    return status if isinstance(status, int) else None


def relation_name(related: Any) -> str:
    """The qualified name of a related asset as search returns it (unique attributes)."""
    unique = getattr(related, "unique_attributes", None) or {}
    return str(unique.get("qualifiedName") or getattr(related, "qualified_name", "") or "")


class Catalog:
    """Questions to Atlan's search. ``per_minute`` requests at most in any 60 s; ``clock`` and
    ``sleep`` are the monotonic clock and the pause (tests give their own)."""

    def __init__(
        self,
        client: Any,
        *,
        per_minute: int = 400,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.per_minute = per_minute
        self.requests = 0
        self._clock = clock
        self._sleep = sleep
        self._sent: Deque[float] = collections.deque()

    def _wait_for_budget(self) -> None:
        while True:
            now = self._clock()
            while self._sent and now - self._sent[0] >= 60.0:
                self._sent.popleft()
            if len(self._sent) < self.per_minute:
                self._sent.append(now)
                return
            self._sleep(60.0 - (now - self._sent[0]))

    def search(self, build: Callable[[Any, Any], Any]) -> List[Any]:
        """The first page of the search ``build(FluentSearch, assets)`` makes."""
        from pyatlan.model import assets
        from pyatlan.model.fluent_search import FluentSearch

        request = build(FluentSearch, assets).page_size(_PAGE).to_request()
        self._wait_for_budget()
        self.requests += 1
        page = self.client.asset.search(request).current_page()
        return list(page or [])

    # -- the questions -----------------------------------------------------------------------

    def connection(self, name: str, connector: str) -> Optional[Any]:
        """The active connection of that name and connector, or ``None``."""

        def build(search: Any, assets: Any) -> Any:
            return (
                search()
                .where(search.asset_type(assets.Connection))
                .where(search.active_assets())
                .where(assets.Connection.NAME.eq(name))
                .where(assets.Connection.CONNECTOR_NAME.eq(connector))
            )

        return next(iter(self.search(build)), None)

    def connections(self, qualified_names: Sequence[str]) -> Dict[str, Any]:
        """The connections of these qualified names, by qualified name (those visible)."""
        if not qualified_names:
            return {}

        def build(search: Any, assets: Any) -> Any:
            return (
                search()
                .where(search.asset_type(assets.Connection))
                .where(assets.Connection.QUALIFIED_NAME.within(sorted(set(qualified_names))))
                .include_on_results(assets.Connection.HOST)
                .include_on_results(assets.Connection.PORT)
            )

        return {str(c.qualified_name): c for c in self.search(build)}

    def job(self, connection: str, job: str) -> Optional[Any]:
        """The job asset Atlan made for ``job`` under the connection, of any job type."""

        def build(search: Any, assets: Any) -> Any:
            asset = assets.Asset
            return (
                search()
                .where(asset.TYPE_NAME.within(list(JOB_TYPES)))
                .where(search.active_assets())
                .where(asset.CONNECTION_QUALIFIED_NAME.eq(connection))
                .where_some(asset.QUALIFIED_NAME.eq(f"{connection}/{job}"))
                .where_some(asset.NAME.eq(job))
                .min_somes(1)
            )

        return next(iter(self.search(build)), None)

    def process(self, connection: str, job: str) -> Optional[Any]:
        """The job's process (``{connection}/{job}/process``), with its inputs and outputs."""

        def build(search: Any, assets: Any) -> Any:
            asset = assets.Asset
            return (
                search()
                .where(asset.TYPE_NAME.eq("Process"))
                .where(search.active_assets())
                .where(asset.CONNECTION_QUALIFIED_NAME.eq(connection))
                .where_some(asset.QUALIFIED_NAME.eq(f"{connection}/{job}/process"))
                .where_some(asset.QUALIFIED_NAME.startswith(f"{connection}/{job}/"))
                .min_somes(1)
                .include_on_results("inputs")
                .include_on_results("outputs")
                .include_on_relations(asset.NAME)
                .include_on_relations(asset.IS_PARTIAL)
                .include_on_relations(asset.CONNECTION_QUALIFIED_NAME)
            )

        return next(iter(self.search(build)), None)

    def crawled(self, connector: str, name: str) -> List[Any]:
        """Crawled (not partial) assets of the connector named ``name``: what a dataset of
        that name could link to."""
        kind = _OBJECT_TYPES.get(connector)
        types = [kind] if kind else list(SQL_TYPES)

        def build(search: Any, assets: Any) -> Any:
            asset = assets.Asset
            query = (
                search()
                .where(asset.TYPE_NAME.within(types))
                .where(search.active_assets())
                .where(asset.CONNECTOR_NAME.eq(connector))
                .where(asset.NAME.eq(name, case_insensitive=True))
                .where_not(asset.IS_PARTIAL.eq(True))
            )
            for field in (
                "database_name",
                "schema_name",
                "s3_bucket_name",
                "s3_object_key",
                "gcs_bucket_name",
                "gcs_object_key",
                "adls_container_name",
                "adls_object_url",
                "aws_arn",
            ):
                query = query.include_on_results(_camel(field))
            return query

        return self.search(build)


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)
