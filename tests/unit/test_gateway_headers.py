"""Specification of the gateway timing headers (llm_users.gateway.headers): presets, parsing, precedence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from llm_users.gateway.headers import (
    GATEWAY_PRESETS,
    POLICY_PRESETS,
    HeaderGetter,
    TimingSource,
    measure,
    parse_ms,
    parse_server_timing,
    parse_sources,
)


def getter(headers: Mapping[str, str | list[str]]) -> HeaderGetter:
    """Case-insensitive lookup, as geventhttpclient's Headers.get (a list for repeated lines)."""
    low = {k.lower(): v for k, v in headers.items()}

    def get(name: str) -> str | Sequence[str] | None:
        return low.get(name.lower())

    return get


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.5", 12.5),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("12.5ms", 12.5),
        ("7 ms", 7.0),
        ("1e2", 100.0),
        ("", None),
        ("abc", None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_ms(text: str, expected: float | None) -> None:
    assert parse_ms(text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("gateway;dur=3.2, policy;dur=0.4", {"gateway": 3.2, "policy": 0.4}),
        ("gateway;dur=3.2,policy;dur=0.4", {"gateway": 3.2, "policy": 0.4}),
        ('db;desc="a, b; c";dur=1, cache', {"db": 1.0, "cache": None}),
        ('x;desc="say \\"hi\\", ok";dur=2', {"x": 2.0}),
        ("Gateway;DUR=5", {"gateway": 5.0}),
        ("gateway;dur=1, gateway;dur=2", {"gateway": 1.0}),  # the first entry of a name wins (W3C)
        (["gateway;dur=1", "policy;dur=2"], {"gateway": 1.0, "policy": 2.0}),  # repeated header lines
        ('gateway;dur="4.5"', {"gateway": 4.5}),
        ("gateway;dur=fast", {"gateway": None}),
        ("gateway; dur = 6", {"gateway": 6.0}),
        ("", {}),
        (" , ;dur=1", {}),
        (None, {}),
    ],
)
def test_parse_server_timing(raw: str | list[str] | None, expected: dict[str, float | None]) -> None:
    assert parse_server_timing(raw) == expected


MOCK_HEADERS = {
    "x-litellm-overhead-duration-ms": "12.345",
    "server-timing": "gateway;dur=12.345, policy;dur=2.100",
}


@pytest.mark.parametrize(
    ("preset", "headers", "ttfb_ms", "expected"),
    [
        ("litellm", {"x-litellm-overhead-duration-ms": "12.5"}, None, 12.5),
        ("litellm", {"X-LiteLLM-Overhead-Duration-Ms": "12.5"}, None, 12.5),  # names are case-insensitive
        ("kong", {"X-Kong-Proxy-Latency": "4"}, None, 4.0),
        ("kong", {"X-Kong-Upstream-Latency": "400"}, None, None),  # only the proxy's own time counts
        ("envoy", {"x-envoy-upstream-service-time": "180"}, 200.0, 20.0),  # TTFB minus upstream time
        ("envoy", {"x-envoy-upstream-service-time": "210"}, 200.0, 0.0),  # never negative
        ("envoy", {"x-envoy-upstream-service-time": "180"}, None, None),  # no TTFB, no difference
        ("server-timing", {"Server-Timing": "gateway;dur=7.5, policy;dur=1"}, None, 7.5),
        ("server-timing", {"Server-Timing": "policy;dur=1"}, None, None),
        ("auto", MOCK_HEADERS, 500.0, 12.345),
        ("auto", {"X-Kong-Proxy-Latency": "4", "Server-Timing": "gateway;dur=9"}, None, 4.0),
        ("auto", {"Server-Timing": "gateway;dur=9", "x-envoy-upstream-service-time": "1"}, 50.0, 9.0),
        ("auto", {"x-envoy-upstream-service-time": "30"}, 50.0, 20.0),
        ("auto", {"x-litellm-overhead-duration-ms": "n/a", "X-Kong-Proxy-Latency": "4"}, None, 4.0),
        ("auto", {}, 50.0, None),
    ],
)
def test_gateway_presets(preset: str, headers: dict[str, str], ttfb_ms: float | None, expected: float | None) -> None:
    got = measure(GATEWAY_PRESETS[preset], getter(headers), ttfb_ms)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_policy_preset_reads_the_policy_entry() -> None:
    assert measure(POLICY_PRESETS["server-timing"], getter(MOCK_HEADERS), None) == pytest.approx(2.1)
    assert measure(POLICY_PRESETS["auto"], getter({"x-litellm-overhead-duration-ms": "3"}), None) is None


def test_a_header_in_seconds_is_converted() -> None:
    (src,) = parse_sources({"header": "X-Gateway-Time", "unit": "s"}, "m")
    assert measure((src,), getter({"x-gateway-time": "0.0125"}), None) == pytest.approx(12.5)
    (up,) = parse_sources({"upstream_header": "X-Upstream", "unit": "s"}, "m")
    assert measure((up,), getter({"x-upstream": "0.1"}), 130.0) == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("litellm", GATEWAY_PRESETS["litellm"]),
        ("Kong", GATEWAY_PRESETS["kong"]),
        ("auto", GATEWAY_PRESETS["auto"]),
        ("off", ()),
        (None, ()),
        (False, ()),
        ({"header": "X-Overhead"}, (TimingSource("header", "X-Overhead"),)),
        ({"server_timing": "edge"}, (TimingSource("server_timing", "Server-Timing", entry="edge"),)),
        ({"upstream_header": "X-Up"}, (TimingSource("upstream_header", "X-Up"),)),
        (["kong", "envoy"], GATEWAY_PRESETS["kong"] + GATEWAY_PRESETS["envoy"]),
        (["auto", "litellm"], GATEWAY_PRESETS["auto"]),  # duplicates are dropped, the order kept
    ],
)
def test_parse_sources(spec: object, expected: tuple[TimingSource, ...]) -> None:
    assert parse_sources(spec, "metrics.gateway_latency") == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "nginx",
            "metrics.gateway_latency: unknown preset 'nginx' (presets: auto, envoy, kong, litellm, server-timing",
        ),
        (12, "metrics.gateway_latency: expected a preset name"),
        ({}, "metrics.gateway_latency: expected exactly one of header, server_timing, upstream_header, got 0"),
        (
            {"header": "a", "server_timing": "b"},
            "expected exactly one of header, server_timing, upstream_header, got 2",
        ),
        ({"headr": "X"}, "metrics.gateway_latency.headr: unknown key"),
        ({"header": ""}, "metrics.gateway_latency.header: expected a header or entry name, got ''"),
        ({"header": "X: 1"}, "metrics.gateway_latency.header: expected a header or entry name"),
        ({"header": "X", "unit": "us"}, "metrics.gateway_latency.unit: expected ms or s, got 'us'"),
        (
            {"server_timing": "gw", "unit": "s"},
            "metrics.gateway_latency.unit: Server-Timing durations are always in ms",
        ),
        ([], "metrics.gateway_latency: expected a non-empty list of sources"),
        (["kong", "nope"], "metrics.gateway_latency[1]: unknown preset 'nope'"),
        (["kong", ["envoy"]], "metrics.gateway_latency[1]: a list cannot hold another list"),
    ],
)
def test_bad_sources_name_the_key_path(spec: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_sources(spec, "metrics.gateway_latency")
    assert message in str(err.value)


def test_describe_says_where_the_value_comes_from() -> None:
    assert [s.describe() for s in GATEWAY_PRESETS["auto"]] == [
        "x-litellm-overhead-duration-ms",
        "X-Kong-Proxy-Latency",
        "Server-Timing: gateway;dur=",
        "TTFB - x-envoy-upstream-service-time",
    ]
