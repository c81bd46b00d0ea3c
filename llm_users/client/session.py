"""A Locust ``FastHttpSession`` made cheaper per request, with the same behaviour (``lean_session``).

Measured in bench/RESULTS.md (issue 19, session 4): of a streamed call's CPU, Locust's request path spent about
7% in the session's cookie jar (``CookieJar.add_cookie_header``/``extract_cookies`` and the jar's lock) although an
LLM API sets no cookie, and about 4% parsing and re-quoting the same URL on every request. Two changes, made
once per session (``llm_call`` calls ``lean_session`` on the session it is given):

- The jar's class becomes ``LeanCookieJar``: the same object (its cookies, policy and lock kept), whose two
  per-request methods return at once when there is nothing to do: no cookie to send (the jar is empty) or no
  ``Set-Cookie``/``Set-Cookie2`` header in the answer. Otherwise the standard library's code runs as before, so a
  load balancer's sticky cookie is taken and sent back as it was.
- The session's request class becomes ``CachedURLRequest``: a string URL without ``params`` is parsed once per
  process into a ``FrozenURL`` (geventhttpclient's ``URL`` with its parts and quoted request URI computed once),
  and a request reads them from it. Any other URL (with ``params``, or an object) is parsed as before.

Both rely on geventhttpclient's and Locust's internals (``UserAgent.request_type``, ``CompatRequest.set_url``):
the versions are pinned and ``tests/unit/test_client_session.py`` compares the results with the stock classes.
No Locust import.
"""

from __future__ import annotations

from http.cookiejar import CookieJar
from typing import Any

from geventhttpclient.url import URL
from geventhttpclient.useragent import CompatRequest

_URL_CACHE_MAX = 256  # distinct request URLs kept parsed (a suite calls a handful; ids in paths fall back)


class LeanCookieJar(CookieJar):
    """``CookieJar`` that skips its per-request work when it has nothing to do (same results)."""

    def add_cookie_header(self, request: Any) -> None:
        # an empty jar adds no header (CookieJar._cookies_for_request finds nothing) and has nothing to expire
        if self._cookies:  # type: ignore[attr-defined]
            super().add_cookie_header(request)

    def extract_cookies(self, response: Any, request: Any) -> None:
        # CookieJar.make_cookies returns [] when neither header is in the answer: nothing is set
        headers = response.info()
        if "Set-Cookie" in headers or "Set-Cookie2" in headers:
            super().extract_cookies(response, request)


class FrozenURL(URL):
    """geventhttpclient's ``URL`` with the parts a request reads computed once (the class is immutable).

    The slots shadow ``URL``'s properties of the same name, so reading them is an attribute read."""

    __slots__ = ("host", "netloc", "port", "quoted_uri", "request_uri", "scheme")

    def __init__(self, url: str) -> None:
        super().__init__(url)
        for name in _FROZEN:  # each slot set from URL's own property (request_uri before quoted_uri, which reads it)
            object.__setattr__(self, name, getattr(URL, name).fget(self))


_FROZEN = ("scheme", "netloc", "host", "port", "request_uri", "quoted_uri")


_urls: dict[str, FrozenURL] = {}


def frozen_url(url: str) -> FrozenURL | None:
    """The parsed ``url``, parsed once; None when the cache is full (the caller parses it)."""
    parsed = _urls.get(url)
    if parsed is None and len(_urls) < _URL_CACHE_MAX:
        parsed = _urls[url] = FrozenURL(url)
    return parsed


def cached_url_request(base: type[CompatRequest]) -> type[CompatRequest]:
    """A subclass of the session's request class whose ``set_url`` reads a string URL from the cache."""

    class CachedURLRequest(base):  # type: ignore[valid-type,misc]
        def set_url(self, url: str | URL, params: Any = None) -> None:
            parsed = frozen_url(url) if params is None and type(url) is str else None
            if parsed is None:
                super().set_url(url, params=params)
                return
            # CompatRequest.set_url for a string URL, its parts read from the parsed one
            self.url = url
            self.url_split = parsed
            self.type = parsed.scheme
            self.host = parsed.netloc
            self.selector = parsed.request_uri or "/"

    CachedURLRequest.__qualname__ = CachedURLRequest.__name__ = f"CachedURL{base.__name__}"
    return CachedURLRequest


_request_classes: dict[type, type] = {}


def lean_session(session: Any) -> None:
    """Make ``session`` (a Locust ``FastHttpSession``) cheaper per request, once; anything else is left as is.

    Sets ``session.llm_lean`` (``llm_call`` reads it to do this once per session)."""
    try:
        session.llm_lean = True
    except AttributeError:
        return
    client = getattr(session, "client", None)
    if client is None:
        return
    jar = getattr(client, "cookiejar", None)
    if type(jar) is CookieJar:
        jar.__class__ = LeanCookieJar  # the same object: what the User or Locust holds of it stays valid
    base = getattr(client, "request_type", None)
    if isinstance(base, type) and issubclass(base, CompatRequest) and base not in _request_classes.values():
        cls = _request_classes.get(base)
        if cls is None:
            cls = _request_classes[base] = cached_url_request(base)
        client.request_type = cls
