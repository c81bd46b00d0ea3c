"""The mock's gateway bookkeeping (API keys, rate limits, budgets, login tokens), faults and wire format."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mock_llm.chunks import ChatChunks
from mock_llm.config import ConfigError, FaultRule, GatewayConfig, from_mapping
from mock_llm.faults import Fault, FaultPlan, parse_header
from mock_llm.gateway import ANONYMOUS, Gateway, TokenBucket, mask_key, retry_after_header
from mock_llm.stats import Stats, render_prometheus


def gateway(**settings: object) -> Gateway:
    return Gateway(from_mapping({"gateway": settings}).gateway, now=0.0)


# --- API keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("require", "header", "key", "error"),
    [
        (False, None, ANONYMOUS, ""),
        (True, None, None, "missing_api_key"),
        (False, "Bearer sk-1", "sk-1", ""),
        (False, "Bearer sk-unknown", None, "invalid_api_key"),  # an unknown key is always refused
        (False, "Basic c2stMQ==", None, "invalid_api_key"),
        (False, "Bearer ", None, "invalid_api_key"),
    ],
)
def test_api_key_check(require: bool, header: str | None, key: str | None, error: str) -> None:
    gw = gateway(require_api_key=require, api_keys={"sk-1": {}})
    result = gw.authenticate(header)
    assert (result.key, result.error) == (key, error)


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # empty: one token comes back in 1/rate s
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) == pytest.approx(0.5)
    assert TokenBucket(rate=0.0, burst=0.0, now=0.0).take(0.0) == 0.0  # unlimited
    assert TokenBucket(rate=5.0, burst=0.0, now=0.0).burst == 5.0  # burst 0 = max(1, rate)
    assert retry_after_header(0.01) == 1 and retry_after_header(2.2) == 3


def test_rate_limit_and_budget_are_counted_per_key() -> None:
    gw = gateway(api_keys={"sk-1": {"rate_limit_rps": 1, "burst": 1, "token_budget": 10}})
    assert gw.admit("sk-1", 0.0) == ("", 0.0)
    verdict, wait = gw.admit("sk-1", 0.1)
    assert verdict == "rate_limited" and wait == pytest.approx(0.9)
    gw.add_tokens("sk-1", 10)
    assert gw.admit("sk-1", 5.0) == ("budget_exceeded", 0.0)
    usage = gw.usage_report(mask=False)["sk-1"]
    assert usage == {"requests": 3, "completion_tokens": 10, "rate_limited": 1, "budget_exceeded": 1,
                     "budget_remaining": 0}  # fmt: skip
    gw.reset(6.0)
    assert gw.admit("sk-1", 6.0) == ("", 0.0)  # reset refills buckets and budgets


def test_reconfiguring_keeps_usage_and_refills_changed_buckets() -> None:
    gw = gateway(api_keys={"sk-1": {"rate_limit_rps": 1, "burst": 1}})
    gw.admit("sk-1", 0.0)
    assert gw.admit("sk-1", 0.0)[0] == "rate_limited"
    gw.configure(from_mapping({"gateway": {"api_keys": {"sk-1": {"rate_limit_rps": 100}}}}).gateway, 0.0)
    assert gw.admit("sk-1", 0.0)[0] == ""
    assert gw.usage["sk-1"].requests == 3


# --- login tokens --------------------------------------------------------------------------------------


def test_login_refresh_expiry_and_revocation() -> None:
    gw = gateway(users={"alice": "pw"}, access_token_ttl_s=10, refresh_token_ttl_s=100)
    assert gw.login("alice", "wrong", 0.0) is None
    assert gw.login("mallory", "pw", 0.0) is None
    pair = gw.login("alice", "pw", 0.0)
    assert pair is not None and pair.expires_in == 10
    assert gw.check_access(f"Bearer {pair.access_token}", 5.0) == ""
    assert gw.check_access(f"Bearer {pair.access_token}", 10.0) == "token_expired"
    assert gw.check_access(None, 0.0) == "missing_token"
    assert gw.check_access("Bearer nope", 0.0) == "invalid_token"
    new, error = gw.refresh(pair.refresh_token, 50.0)
    assert new is not None and error == ""
    assert gw.refresh(pair.refresh_token, 50.0) == (None, "invalid_token")  # the old one is used up
    assert gw.refresh(new.refresh_token, 151.0) == (None, "token_expired")
    assert gw.revoke(access=True, refresh=False) == (2, 0)
    assert gw.check_access(f"Bearer {new.access_token}", 51.0) == "token_revoked"
    assert gw.revoke(access=False, refresh=True) == (0, 1)


def test_admin_listings_mask_the_keys() -> None:
    assert mask_key("sk-test-123456") == "sk-...3456"
    assert mask_key("short") == "sh..."


# --- faults --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "fault"),
    [
        ("error", Fault("error")),
        ("error:503", Fault("error", 503)),
        ("disconnect:3", Fault("disconnect", 3)),
        (" stall:0.5 ", Fault("stall", 0.5)),
        ("wrong_content_type", Fault("wrong_content_type")),
    ],
)
def test_fault_header(header: str, fault: Fault) -> None:
    assert parse_header(header) == fault


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("boom", "X-Mock-Fault: expected one of error, disconnect, reset, reset_headers, malformed, sse_error, "
                 "stall, slow_headers, invalid_json, wrong_content_type, oversized, got 'boom'"),
        ("error:abc", "X-Mock-Fault: expected a number after error:, got 'abc'"),
        ("error:99", "X-Mock-Fault: expected an HTTP status in [100, 599] for 'error', got 99"),
        ("invalid_json:1", "X-Mock-Fault: fault kind 'invalid_json' takes no argument, got 1"),
    ],
)  # fmt: skip
def test_bad_fault_header(header: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_header(header)
    assert str(err.value) == message


def test_token_faults_fire_mid_stream_by_default() -> None:
    assert Fault("disconnect").at_token(20) == 10
    assert Fault("disconnect", 3).at_token(20) == 3
    assert Fault("disconnect", 50).at_token(20) == 20
    assert Fault("stall", 3).at_token(20) == 10  # a duration, not a position
    assert Fault("error").value() == 500 and Fault("stall").value() == 30.0


def test_fault_rules_roll_at_their_rate_with_the_seed() -> None:
    rules = [FaultRule(kind="error", rate=0.2, path="/generate"), FaultRule(kind="disconnect", rate=0.5, path="*")]
    plan = FaultPlan(rules, seed=1)
    rolls = [plan.roll("/generate", llm=True) for _ in range(4000)]
    errors = sum(1 for f in rolls if f is not None and f.kind == "error")
    disconnects = sum(1 for f in rolls if f is not None and f.kind == "disconnect")
    assert 0.17 < errors / 4000 < 0.23
    assert 0.37 < disconnects / 4000 < 0.43  # 0.8 * 0.5: the path rule is rolled first
    again = FaultPlan(rules, seed=1)
    assert [again.roll("/generate", llm=True) for _ in range(4000)] == rolls
    assert all(plan.roll("/health", llm=False) is None for _ in range(100))  # only error outside LLM paths
    assert not FaultPlan([FaultRule(kind="error", rate=0.0)], seed=0)


# --- wire format ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("timestamps", [False, True])
def test_every_chunk_template_is_one_sse_event_of_valid_json(timestamps: bool) -> None:
    enc = ChatChunks("chatcmpl-x", 123, 'model "q"', timestamps)
    events = [enc.role(), enc.content(b"hello "), enc.reasoning(b"think "), enc.raw_content('a"b\n'),
              enc.finish("stop"), enc.usage(3, 4, 1), enc.error("boom")]  # fmt: skip
    for event in events:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n") and event.count(b"\n") == 2
        obj = json.loads(event[6:])
        if "error" in obj:
            continue
        assert (obj["id"], obj["object"], obj["created"], obj["model"]) == (
            "chatcmpl-x", "chat.completion.chunk", 123, 'model "q"')  # fmt: skip
        assert ("mock_sent_ns" in obj) is timestamps
    usage = json.loads(enc.usage(3, 4, 1)[6:])
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 7
    assert json.loads(enc.raw_content('a"b\n')[6:])["choices"][0]["delta"]["content"] == 'a"b\n'


def test_prometheus_text_parses_and_carries_the_counters() -> None:
    stats = Stats()
    stats.requests["POST /generate"] += 3
    stats.statuses["POST /generate"][200] += 2
    stats.statuses["POST /generate"][500] += 1
    stats.faults["error"] += 1
    stats.tokens_served = 42
    text = render_prometheus(stats, "osiris", active=2, queued=1).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    assert samples[("osiris_requests_total", (("method", "POST"), ("path", "/generate"), ("status", "200")))] == 2
    assert samples[("osiris_requests_total", (("method", "POST"), ("path", "/generate"), ("status", "500")))] == 1
    assert samples[("osiris_tokens_generated_total", ())] == 42
    assert samples[("osiris_faults_injected_total", (("kind", "error"),))] == 1
    assert samples[("osiris_active_requests", ())] == 2
    assert samples[("osiris_queue_length", ())] == 1


def test_gateway_config_defaults() -> None:
    assert GatewayConfig().users == {"admin": "mock-admin-password"}
    assert not GatewayConfig().require_api_key
