"""PostgreSQL outbox URLs: telling one, showing one without its password, and the passwords
of the URLs this process opened (for the couriers it starts, in their environment only)."""

from __future__ import annotations

from typing import Dict, Optional
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["is_url", "password_of", "redacted", "remember_password"]


def is_url(target: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password: what is shown, logged and passed to couriers."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query, ""))


# The passwords of the outbox URLs this process opened, by the URL as shown: a courier this
# process starts gets its outbox's password in its environment (PGPASSWORD), never on its
# command line (where ps shows it). Process memory only: never written, logged or shown.
_PASSWORDS: Dict[str, str] = {}


def remember_password(url: str) -> None:
    """Keep the password of ``url``, if it has one, for :func:`password_of`."""
    password = urlsplit(url).password
    if password is not None:
        _PASSWORDS[redacted(url)] = unquote(password)


def password_of(shown: str) -> Optional[str]:
    """The password of the outbox URL ``shown`` (as :func:`redacted` shows it) when this
    process opened that outbox with a password in its URL; else ``None``."""
    return _PASSWORDS.get(shown)
