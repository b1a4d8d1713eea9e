"""Every exception atlan-ext raises.

Everything derives from :class:`AtlanExtError`. Errors about a bad value are also
:class:`ValueError`, so code that already catches ``ValueError`` keeps working; about a value
of the wrong kind (:class:`InvalidClientError`, :class:`InvalidOutcomeError`) also
:class:`TypeError`; :class:`RunInUseError` (a run used twice at once) is a
:class:`RuntimeError`. The README's table says the same, and a test holds it to these
classes. Delivery errors carry the HTTP status (when there was one) and whether trying again
later can help. No message ever carries an API token.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "AtlanExtError",
    "InvalidClientError",
    "InvalidDatasetError",
    "InvalidEventError",
    "InvalidFacetError",
    "InvalidJobError",
    "InvalidOptionError",
    "InvalidOutcomeError",
    "InvalidRunIdError",
    "InvalidTimeError",
    "InvalidTransitionError",
    "LineageAuthenticationError",
    "LineageDeliveryError",
    "LineageNotConfiguredError",
    "LineageReadError",
    "MissingDependencyError",
    "OutboxError",
    "RunInUseError",
    "TenantSettingsError",
    "UnknownRunStateError",
    "UnsupportedConnectorError",
]


class AtlanExtError(Exception):
    """Base class of every error raised by atlan-ext."""


class UnknownRunStateError(AtlanExtError, ValueError):
    """A value that is not one of the six OpenLineage run states."""


class InvalidTransitionError(AtlanExtError, ValueError):
    """An event that the OpenLineage run cycle does not allow after the run's last state."""


class InvalidDatasetError(AtlanExtError, ValueError):
    """A dataset without a namespace or name, or a URI that cannot be split into both."""


class InvalidJobError(AtlanExtError, ValueError):
    """A job without a connection (namespace) or name, or with a malformed job facet."""


class InvalidRunIdError(AtlanExtError, ValueError):
    """A run id that is not a UUID."""


class InvalidFacetError(AtlanExtError, ValueError):
    """A facet that is not a JSON object of JSON-serialisable values."""


class InvalidTimeError(AtlanExtError, ValueError):
    """An event time without a time zone, or that is not a datetime."""


class InvalidEventError(AtlanExtError, ValueError):
    """An event (built elsewhere, or read from a file) that breaks the OpenLineage rules."""


class InvalidOutcomeError(AtlanExtError, TypeError):
    """An outcome that is neither ``None``, an exception, nor a process exit status."""


class InvalidOptionError(AtlanExtError, ValueError):
    """An option that cannot work: a timeout that is not a finite positive number,
    ``strict=True`` with ``background=True``, an outbox that is not an ``Outbox``."""


class InvalidClientError(AtlanExtError, TypeError):
    """A ``client`` that is not a pyatlan client, ``None`` or ``"local"``, or an async client
    where a sync one is needed."""


class RunInUseError(AtlanExtError, RuntimeError):
    """A run (or a ``lineage_run``) entered again while it is already in use."""


class UnsupportedConnectorError(AtlanExtError, ValueError):
    """A connector type that has no Atlan OpenLineage endpoint."""


class LineageDeliveryError(AtlanExtError):
    """Atlan did not accept an event.

    ``status`` is the final HTTP status, or ``None`` when no answer came (connection
    refused, timeout). ``retryable`` says whether sending the same event later can succeed.
    ``retry_after``: the seconds Atlan asked to wait before the next try (its ``Retry-After``
    header on a 429 or 503), or ``None`` when it did not say.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        retryable: bool,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class LineageNotConfiguredError(LineageDeliveryError):
    """The tenant has no OpenLineage connection for the connector the event was sent to."""


class TenantSettingsError(LineageDeliveryError):
    """A setting that names the tenant (``ATLAN_BASE_URL``, ``ATLAN_API_KEY``,
    ``--base-url``...) is missing or malformed; the message names it and the fix."""


class LineageAuthenticationError(LineageDeliveryError):
    """The tenant refused the API token (HTTP 401 or 403)."""


class LineageReadError(AtlanExtError, LookupError):
    """An asset's lineage could not be read back from Atlan: no tenant to ask, no such asset,
    or Atlan's answer was an error; the message names the asset and what to do."""


class OutboxError(AtlanExtError):
    """The local outbox database cannot be used (corrupted, foreign, or not writable)."""


class MissingDependencyError(AtlanExtError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
