"""The installed version, and the producer URI every event and facet carries."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("atlan-ext")
except PackageNotFoundError:  # pragma: no cover - running from a source tree not installed
    __version__ = "0+unknown"

#: ``producer`` of every event (and ``_producer`` of every facet) atlan-ext builds.
PRODUCER = f"https://pypi.org/project/atlan-ext/{__version__}/"
