"""Gateway timing headers: where ``gateway_latency`` and ``policy_check_latency`` come from (seed 000).

A *source* says how to read one value, in milliseconds, from the headers of an answer:

=================== =========================================================================================
``header``          the header holds the time spent in the gateway (``x-litellm-overhead-duration-ms: 3.2``,
                    ``X-Kong-Proxy-Latency: 4``); ``unit: s`` for a header in seconds
``server_timing``   an entry of ``Server-Timing`` (W3C): ``Server-Timing: gateway;dur=3.2, policy;dur=0.4``
                    (``dur`` is in milliseconds by definition)
``upstream_header`` the header holds the time the *upstream* (the LLM) took; the gateway time is the
                    client's time to the response headers (TTFB) minus it (Envoy's
                    ``x-envoy-upstream-service-time``); a negative difference counts as 0
=================== =========================================================================================

A metric takes a list of sources; the first one present (and parsable) in an answer gives the value, so one
configuration fits several gateways. Presets name the usual ones (``GATEWAY_PRESETS``, ``POLICY_PRESETS``):
``litellm``, ``kong``, ``envoy``, ``server-timing`` and ``auto`` (all four, most specific first).

``parse_sources(spec, where)`` turns a YAML value into sources (a preset name, a mapping with one of the keys
above, a list of those, or ``off``); a bad value raises ``ValueError`` naming the key path ``where``.
No Locust import here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GATEWAY_PRESETS",
    "POLICY_PRESETS",
    "HeaderGetter",
    "SourceKind",
    "TimingSource",
    "carried",
    "measure",
    "parse_ms",
    "parse_server_timing",
    "parse_sources",
]

SourceKind = Literal["header", "server_timing", "upstream_header"]
HeaderGetter = Callable[[str], "str | Sequence[str] | None"]
"""Looks a header up by name (case-insensitive), as one value or the values of repeated lines."""

SERVER_TIMING = "Server-Timing"
_UNITS = {"ms": 1.0, "s": 1000.0}


@dataclass(frozen=True, slots=True)
class TimingSource:
    """One way to read a timing, in ms, from an answer's headers."""

    kind: SourceKind
    header: str
    """Header name (``Server-Timing`` for the ``server_timing`` kind)."""
    entry: str = ""
    """``Server-Timing`` entry name (``server_timing`` kind only)."""
    unit_ms: float = 1.0
    """Milliseconds per unit of the header value (1000 for a header in seconds)."""

    def describe(self) -> str:
        if self.kind == "server_timing":
            return f"Server-Timing: {self.entry};dur="
        if self.kind == "upstream_header":
            return f"TTFB - {self.header}"
        return self.header

    def read(self, get: HeaderGetter, ttfb_ms: float | None) -> float | None:
        """The value in ms from these headers, None when absent or not a number."""
        raw = get(self.header)
        if raw is None:
            return None
        if self.kind == "server_timing":
            dur = parse_server_timing(raw).get(self.entry.lower())
            return dur if dur is not None and dur >= 0 else None
        value = parse_ms(_first(raw))
        if value is None:
            return None
        value *= self.unit_ms
        if self.kind == "header":
            return value
        if ttfb_ms is None:
            return None
        return max(0.0, ttfb_ms - value)


def carried(sources: Sequence[TimingSource]) -> str:
    """What an answer must carry for ``sources`` to give a value, in words: ``x-litellm-overhead-duration-ms or
    Server-Timing gateway``."""
    names = [f"Server-Timing {s.entry}" if s.kind == "server_timing" else s.header for s in sources]
    return " or ".join(names) if names else "(no header configured)"


def _header(name: str, unit_ms: float = 1.0) -> TimingSource:
    return TimingSource("header", name, unit_ms=unit_ms)


def _server_timing(entry: str) -> TimingSource:
    return TimingSource("server_timing", SERVER_TIMING, entry=entry)


def _upstream(name: str, unit_ms: float = 1.0) -> TimingSource:
    return TimingSource("upstream_header", name, unit_ms=unit_ms)


_LITELLM = _header("x-litellm-overhead-duration-ms")
_KONG = _header("X-Kong-Proxy-Latency")
_ENVOY = _upstream("x-envoy-upstream-service-time")
_ST_GATEWAY = _server_timing("gateway")
_ST_POLICY = _server_timing("policy")

GATEWAY_PRESETS: dict[str, tuple[TimingSource, ...]] = {
    "litellm": (_LITELLM,),
    "kong": (_KONG,),
    "envoy": (_ENVOY,),
    "server-timing": (_ST_GATEWAY,),
    # an overhead reported by the gateway itself beats one derived from the upstream time
    "auto": (_LITELLM, _KONG, _ST_GATEWAY, _ENVOY),
}
POLICY_PRESETS: dict[str, tuple[TimingSource, ...]] = {
    "server-timing": (_ST_POLICY,),
    "auto": (_ST_POLICY,),
}


def _first(raw: str | Sequence[str]) -> str:
    if isinstance(raw, str):
        return raw
    return raw[0] if raw else ""


def parse_ms(text: str) -> float | None:
    """``"12.5"``, ``" 12 "``, ``"12.5ms"`` -> 12.5; None for anything else (negative and non-finite too)."""
    t = text.strip().lower().removesuffix("ms").strip()
    try:
        v = float(t)
    except ValueError:
        return None
    return v if math.isfinite(v) and v >= 0 else None


def _split(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside double-quoted strings (backslash escapes inside them)."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            buf.append(ch)
            escaped = False
        elif quoted and ch == "\\":
            buf.append(ch)
            escaped = True
        elif ch == '"':
            buf.append(ch)
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _unquote(value: str) -> str:
    v = value.strip()
    if len(v) >= 2 and v[0] == v[-1] == '"':
        out: list[str] = []
        escaped = False
        for ch in v[1:-1]:
            if escaped or ch != "\\":
                out.append(ch)
                escaped = False
            else:
                escaped = True
        return "".join(out)
    return v


def parse_server_timing(raw: str | Sequence[str] | None) -> dict[str, float | None]:
    """Entries of ``Server-Timing`` header value(s): lower-cased name -> ``dur`` in ms (None without one).

    ``gateway;dur=3.2, db;desc="a, b";dur=1, cache`` -> ``{"gateway": 3.2, "db": 1.0, "cache": None}``.
    Several header lines count as one comma-separated list; a name seen twice keeps its first entry (W3C);
    a ``dur`` that is not a number is None.
    """
    if raw is None:
        return {}
    text = raw if isinstance(raw, str) else ", ".join(raw)
    out: dict[str, float | None] = {}
    for entry in _split(text, ","):
        params = _split(entry, ";")
        name = params[0].strip().lower()
        if not name or any(c in name for c in ' "=\t'):
            continue
        dur: float | None = None
        for p in params[1:]:
            key, sep, value = p.partition("=")
            if sep and key.strip().lower() == "dur":
                try:
                    v = float(_unquote(value))
                except ValueError:
                    v = math.nan
                dur = v if math.isfinite(v) else None
                break
        out.setdefault(name, dur)
    return out


def measure(sources: Sequence[TimingSource], get: HeaderGetter, ttfb_ms: float | None) -> float | None:
    """The value of the first source present in the headers, in ms; None when none is."""
    for src in sources:
        v = src.read(get, ttfb_ms)
        if v is not None:
            return v
    return None


_SOURCE_KEYS = ("header", "server_timing", "upstream_header")


def _show(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def _one(spec: object, where: str, presets: Mapping[str, tuple[TimingSource, ...]]) -> tuple[TimingSource, ...]:
    names = ", ".join(sorted(presets))
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in presets:
            return presets[key]
        raise ValueError(
            f"{where}: unknown preset {spec!r} (presets: {names}; or a mapping with one of {', '.join(_SOURCE_KEYS)})"
        )
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"{where}: expected a preset name ({names}) or a mapping with one of {', '.join(_SOURCE_KEYS)}, "
            f"got {_show(spec)}"
        )
    for k in spec:
        if k not in (*_SOURCE_KEYS, "unit"):
            raise ValueError(f"{where}.{k}: unknown key (expected one of: {', '.join(_SOURCE_KEYS)}, unit)")
    kinds = [k for k in _SOURCE_KEYS if k in spec]
    if len(kinds) != 1:
        raise ValueError(f"{where}: expected exactly one of {', '.join(_SOURCE_KEYS)}, got {len(kinds)}")
    kind = kinds[0]
    value = spec[kind]
    if not isinstance(value, str) or not value.strip() or any(c in value for c in " :\t\r\n"):
        raise ValueError(f"{where}.{kind}: expected a header or entry name, got {_show(value)}")
    unit = spec.get("unit", "ms")
    if kind == "server_timing":
        if "unit" in spec:
            raise ValueError(f"{where}.unit: Server-Timing durations are always in ms; remove 'unit'")
        return (_server_timing(value.strip()),)
    if not isinstance(unit, str) or unit not in _UNITS:
        raise ValueError(f"{where}.unit: expected ms or s, got {_show(unit)}")
    if kind == "header":
        return (_header(value.strip(), _UNITS[unit]),)
    return (_upstream(value.strip(), _UNITS[unit]),)


def parse_sources(
    spec: object, where: str, presets: Mapping[str, tuple[TimingSource, ...]] = GATEWAY_PRESETS
) -> tuple[TimingSource, ...]:
    """Sources from a YAML value; ``()`` for ``off``/``false``/null. ValueError names ``where`` (a key path)."""
    if spec is None or spec is False or (isinstance(spec, str) and spec.strip().lower() in ("off", "none")):
        return ()
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"{where}: expected a non-empty list of sources (or off)")
        out: list[TimingSource] = []
        for i, item in enumerate(spec):
            if isinstance(item, list):
                raise ValueError(f"{where}[{i}]: a list cannot hold another list")
            for src in _one(item, f"{where}[{i}]", presets):
                if src not in out:
                    out.append(src)
        return tuple(out)
    return _one(spec, where, presets)
