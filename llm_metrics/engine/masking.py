"""Masking of secrets in everything the suite writes (pure: no Locust).

A secret can reach an output in another spelling than the one it was given in: JSON escapes ``"``, ``\\`` and
non-ASCII characters (``ä`` -> ``\\u00e4``), a URL percent-encodes them, HTML escapes ``&``, ``<`` and ``"``.
``secret_forms`` lists every such spelling of a value and ``redact`` replaces all of them (longest first), so a
password with a quote or an umlaut is masked in a JSON summary as it is in the console.

URLs can carry credentials of their own (``https://user:pass@host``): ``redact_userinfo`` masks the user
information of every URL in a text, and ``safe_url`` gives the ``scheme://host:port`` of a URL for a log line
(the user information, the path and the query of a Pushgateway URL may hold a token).

``short_secrets`` names the secrets too short to be masked safely: masking a 3-character value would also
mask every unrelated occurrence of those characters, and would reveal the value by where the masks fall.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 8
"""Secrets shorter than this are refused at start-up unless ``--allow-short-secrets`` is given."""

# the scheme starts after any character that cannot be part of one: "_http://u:p@h" (a file name) is a URL too
_USERINFO = re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*://)([^/?#@\s\"'<>]+)@")


def secret_forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` an output may hold: raw, JSON-escaped (ASCII or not), URL-encoded (path
    and form style), HTML-escaped, and these combined (JSON of a URL-encoded value, HTML of a JSON one)."""
    if not secret:
        return set()
    forms = {secret}
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    for url in (urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret), urllib.parse.quote(secret)):
        forms.add(url)
        forms.add(url.lower())  # %c3%a4: some clients write lower-case hex
    forms |= {html.escape(f, quote=True) for f in list(forms)}
    forms |= {html.escape(f, quote=False) for f in list(forms)}
    return {f for f in forms if f}


def _all_forms(secrets: Iterable[str | None]) -> list[str]:
    forms: set[str] = set()
    for s in secrets:
        if s:
            forms |= secret_forms(str(s))
    return sorted(forms, key=len, reverse=True)


def redact_userinfo(text: str) -> str:
    """``text`` with the user information of every URL in it masked: ``https://***@host/...``."""
    return _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every form (``secret_forms``) of every non-empty secret, and every URL's user information,
    replaced by ``***``."""
    for form in _all_forms(secrets):
        text = text.replace(form, MASK)
    return redact_userinfo(text)


def redact_obj(obj: Any, secrets: Iterable[str | None]) -> Any:
    """A copy of a JSON-like structure with secrets and URL user information masked in every string (keys too)."""
    forms = _all_forms(secrets)

    def walk(o: Any) -> Any:
        if isinstance(o, str):
            for form in forms:
                o = o.replace(form, MASK)
            return redact_userinfo(o)
        if isinstance(o, Mapping):
            return {walk(k): walk(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [walk(v) for v in o]
        return o

    return walk(obj)


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may be credentials: its user name, password and query values."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return [url] if url else []
    found = [p for p in (parts.username, parts.password) if p]
    found += [v for _, v in urllib.parse.parse_qsl(parts.query) if v]
    return [urllib.parse.unquote(f) for f in found]


def safe_url(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` for a log line: no user information, path or query."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if not parts.scheme or not host:
        return "<URL without scheme or host>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def short_secrets(named: Mapping[str, str | None], minimum: int = MIN_SECRET_LENGTH) -> list[str]:
    """The names of the non-empty secrets shorter than ``minimum`` characters."""
    return [name for name, value in named.items() if value and len(value) < minimum]


__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "redact",
    "redact_obj",
    "redact_userinfo",
    "safe_url",
    "secret_forms",
    "short_secrets",
    "url_secrets",
]
