"""PostgreSQL outbox URLs: telling one, showing one without its password, and the passwords
of the URLs this process opened (for the couriers it starts, in their environment only)."""

from __future__ import annotations

from typing import Dict, List, Optional
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

__all__ = ["is_url", "password_of", "passwords", "redacted", "remember_password"]


def is_url(target: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password (in its user part, or a ``password`` option): what is
    shown, logged and passed to couriers."""
    parts = urlsplit(url)
    kept = [piece for piece in parts.query.split("&") if piece.partition("=")[0] != "password"]
    query = "&".join(kept) if parts.query else parts.query
    if parts.password is None and query == parts.query:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{user}{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def passwords(url: str) -> List[str]:
    """Every form of the password ``url`` carries (as written and decoded), longest first:
    the secrets to blank out of a driver's message about it."""
    parts = urlsplit(url)
    found = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    for piece in parts.query.split("&"):
        key, _, value = piece.partition("=")
        if key == "password" and value:
            found += [value, unquote(value)]
    found += [value for key, value in parse_qsl(parts.query) if key == "password" and value]
    return sorted(set(found), key=len, reverse=True)


# The passwords of the outbox URLs this process opened, by the URL as shown: a courier this
# process starts gets its outbox's password in its environment (PGPASSWORD), never on its
# command line (where ps shows it). Process memory only: never written, logged or shown.
_PASSWORDS: Dict[str, str] = {}


def remember_password(url: str) -> None:
    """Keep the password of ``url``, if it has one, for :func:`password_of`."""
    parts = urlsplit(url)
    if parts.password is not None:
        _PASSWORDS[redacted(url)] = unquote(parts.password)
        return
    for key, value in parse_qsl(parts.query):
        if key == "password" and value:
            _PASSWORDS[redacted(url)] = value


def password_of(shown: str) -> Optional[str]:
    """The password of the outbox URL ``shown`` (as :func:`redacted` shows it) when this
    process opened that outbox with a password in its URL; else ``None``."""
    return _PASSWORDS.get(shown)
