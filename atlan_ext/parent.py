"""The parent of a run: the run (and job) that started it, across threads, processes and tools.

A run started inside another run of the same thread or task gets that run as its parent. A
run started in a child process gets the parent its environment names, in the form
OpenLineage's own integrations read and write:

- ``OPENLINEAGE_PARENT_ID``: ``namespace/name/runId`` (dbt-ol, openlineage-python, Airflow's
  ``lineage_parent_id`` macro), with ``OPENLINEAGE_ROOT_PARENT_ID`` in the same form;
- ``OPENLINEAGE_CONTEXT``: JSON ``{"parent": {"run": {"runId": ...}, "job": {"namespace": ...,
  "name": ...}, "root": {...}}}``, which newer integrations write; it wins when both are set.

:meth:`Parent.env` writes all three for a child, so OpenLineage-aware children nest under
the run (``atlan-lineage wrap`` does this for its command).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from atlan_ext import facets as _facets
from atlan_ext._state import say_once
from atlan_ext._values import RunId, check_text
from atlan_ext.exceptions import AtlanExtError, InvalidJobError, InvalidRunIdError

__all__ = ["PARENT_VARIABLES", "Parent"]

#: The environment variables a parent is read from and written to.
PARENT_VARIABLES = ("OPENLINEAGE_CONTEXT", "OPENLINEAGE_PARENT_ID", "OPENLINEAGE_ROOT_PARENT_ID")


@dataclass(frozen=True)
class Parent:
    """A parent run: its run id, its job's namespace and name, and the root run (the
    outermost one) when it is known, as ``(run_id, namespace, name)``."""

    run_id: str
    namespace: str
    name: str
    root: Optional[Tuple[str, str, str]] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_id", RunId.check(self.run_id))
        check_text(self.namespace, "parent job namespace", InvalidJobError)
        check_text(self.name, "parent job name", InvalidJobError)
        if self.root is not None:
            run_id, namespace, name = self.root
            check_text(namespace, "root job namespace", InvalidJobError)
            check_text(name, "root job name", InvalidJobError)
            object.__setattr__(self, "root", (RunId.check(run_id), namespace, name))

    @property
    def root_or_self(self) -> Tuple[str, str, str]:
        """The root run, which is this run itself when it has no parent of its own."""
        return self.root or (self.run_id, self.namespace, self.name)

    def facet(self) -> Dict[str, Any]:
        """The ``parent`` run facet of a run whose parent this is (with ``root``)."""
        return _facets.parent(self.run_id, self.namespace, self.name, root=self.root_or_self)

    def env(self) -> Dict[str, str]:
        """The environment variables that make a child process's runs nest under this one."""
        root_id, root_namespace, root_name = self.root_or_self
        context = {
            "parent": {
                "run": {"runId": self.run_id},
                "job": {"namespace": self.namespace, "name": self.name},
                "root": {
                    "run": {"runId": root_id},
                    "job": {"namespace": root_namespace, "name": root_name},
                },
            }
        }
        return {
            "OPENLINEAGE_PARENT_ID": f"{self.namespace}/{self.name}/{self.run_id}",
            "OPENLINEAGE_ROOT_PARENT_ID": f"{root_namespace}/{root_name}/{root_id}",
            "OPENLINEAGE_CONTEXT": json.dumps(context, separators=(",", ":")),
        }

    @classmethod
    def parse(cls, value: object) -> Parent:
        """A parent from a :class:`Parent`, a run (anything with ``as_parent()``), a
        ``namespace/name/runId`` string, or a ``(run_id, namespace, name)`` tuple."""
        if isinstance(value, Parent):
            return value
        as_parent = getattr(value, "as_parent", None)
        if callable(as_parent):
            found = as_parent()
            if isinstance(found, Parent):
                return found
        if isinstance(value, str):
            parsed = _from_id(value)
            if parsed is not None:
                return cls(*parsed)
        elif isinstance(value, tuple) and len(value) == 3:
            return cls(*value)
        raise InvalidRunIdError(
            f"{value!r} is not a parent run; pass a run, atlan_ext.Parent(run_id, namespace, "
            "name), (run_id, namespace, name) or 'namespace/name/runId'"
        )

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> Optional[Parent]:
        """The parent the environment names (see the module's docstring), or ``None``.

        A malformed value is ignored, with one warning naming the variable: a parent is
        context, never a reason to stop a job.
        """
        env = os.environ if environ is None else environ
        context = env.get("OPENLINEAGE_CONTEXT", "").strip()
        if context:
            try:
                return _from_context(context)
            except (AtlanExtError, ValueError, KeyError, TypeError, AttributeError):
                say_once(
                    f"parent-env:{context}",
                    "atlan_ext: OPENLINEAGE_CONTEXT is not a parent run (expected JSON "
                    '{"parent": {"run": {"runId": ...}, "job": {"namespace": ..., "name": ...}}}'
                    "); it is ignored",
                )
        text = env.get("OPENLINEAGE_PARENT_ID", "").strip()
        if not text:
            return None
        parent = _from_id(text)
        root_text = env.get("OPENLINEAGE_ROOT_PARENT_ID", "").strip()
        root = _from_id(root_text) if root_text else None
        try:
            if parent is None:
                raise InvalidRunIdError(text)
            return cls(*parent, root=root)
        except AtlanExtError:
            say_once(
                f"parent-env:{text}",
                "atlan_ext: OPENLINEAGE_PARENT_ID %r is not namespace/name/runId; it is ignored",
                text,
            )
            return None


def _from_id(text: str) -> Optional[Tuple[str, str, str]]:
    """``namespace/name/runId`` as ``(run_id, namespace, name)``; the name may hold ``/``."""
    namespace, _, rest = text.strip().partition("/")
    name, _, run_id = rest.rpartition("/")
    if not namespace or not name or not run_id:
        return None
    try:
        return RunId.check(run_id), namespace, name
    except InvalidRunIdError:
        return None


def _from_context(text: str) -> Parent:
    parent = json.loads(text)["parent"]
    root = parent.get("root")
    return Parent(
        parent["run"]["runId"],
        parent["job"]["namespace"],
        parent["job"]["name"],
        root=(root["run"]["runId"], root["job"]["namespace"], root["job"]["name"])
        if root
        else None,
    )
