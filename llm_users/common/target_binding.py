"""Secrets bound to their target: an API key, a token or a password goes only to the origin it was set for.

An origin is ``(scheme, host, port)`` of a URL, written ``scheme://host:port`` (default ports made explicit,
host in lower case). At start-up the suite binds the secrets to the origin of its configured target
(``--secrets-origin``, set by the suite, hidden from the web UI and refused in its form). When the target later
is another origin (the web UI changed ``host``, ``BASE``, ``BASE_URL`` or ``OSIRIS_URL``), ``allowed``
 drops every secret for that run, unless they were entered again with the new target (then the web UI binds them
to it). Pure: no Locust.

``LocalSecrets`` is the secrets-on-workers mode (``--secrets-on-workers``): a worker keeps the secrets of its
own environment (or mounted ``*_FILE`` files), bound to the origin of its own configured target, and never uses
the (empty) values its master forwards.

Redirects: no request that carries a secret follows a redirect (``allow_redirects=False``; urllib calls use
``no_redirect_opener``): a 3xx is a failed call naming the status. geventhttpclient drops ``Authorization`` on a
redirect to another origin but keeps other headers (``X-LoadTest-Token``) and resends a 307/308 body (a login
password).
"""

from __future__ import annotations

import functools
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_metrics.state import find_state, state

DEFAULT_PORTS = {"http": 80, "https": 443}
TARGET_OPTIONS = ("base", "base_url", "osiris_url")
"""The suites' own target options; the first one set wins over Locust's ``--host``."""


@functools.lru_cache(maxsize=256)
def origin(url: str) -> str:
    """``scheme://host:port`` of ``url`` (lower case, default port explicit); "" when it has no scheme or host."""
    try:
        parts = urllib.parse.urlsplit(str(url).strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if not scheme or not host:
        return ""
    if port is None:
        port = DEFAULT_PORTS.get(scheme, 0)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def effective_target(values: Mapping[str, Any], host: str | None, default: str) -> str:
    """The URL a suite sends to: its own target option when set, else Locust's host, else ``default``."""
    for key in TARGET_OPTIONS:
        value = str(values.get(key) or "").strip()
        if value:
            return value
    return str(host or values.get("host") or default).strip()


@dataclass(frozen=True)
class LocalSecrets:
    """A worker's own secrets (secrets-on-workers mode) and the origin they are bound to."""

    values: Mapping[str, str]
    origin: str
    names: tuple[str, ...] = field(default=())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx is the answer (an HTTPError): no secret follows a redirect to another server


def no_redirect_opener() -> urllib.request.OpenerDirector:
    """A urllib opener that follows no redirect and uses no proxy from the environment (as Locust's clients)."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def local_secrets(environment: Any) -> LocalSecrets | None:
    """The worker's own secrets (secrets-on-workers mode) kept in the environment's ``SuiteState``; None otherwise."""
    found = find_state(environment)
    local = found.runtime("local_secrets") if found is not None else None
    return local if isinstance(local, LocalSecrets) else None


def set_local_secrets(environment: Any, local: LocalSecrets) -> None:
    state(environment).set_runtime("local_secrets", local)


def binding_origin(target: str, bound_origin: str, local: LocalSecrets | None = None) -> str:
    """The origin the secrets belong to: the worker's own (``local``), else ``bound_origin``, else ``target``'s."""
    if local is not None:
        return local.origin
    return bound_origin or origin(target)


def allowed(target: str, bound_origin: str, local: LocalSecrets | None = None) -> bool:
    """True when the secrets may be sent to ``target``: its origin is the one they are bound to."""
    where = binding_origin(target, bound_origin, local)
    return bool(where) and origin(target) == where


__all__ = [
    "TARGET_OPTIONS",
    "LocalSecrets",
    "allowed",
    "binding_origin",
    "effective_target",
    "local_secrets",
    "no_redirect_opener",
    "origin",
    "set_local_secrets",
]
