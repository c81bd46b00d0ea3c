"""The mock as an LLM gateway: login/refresh/revoke, admin API, API keys, 401/429/402, timing headers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mock_llm.config import from_mapping, to_dict
from mock_llm.testing import MockProcess, stream_request

BASE: dict[str, Any] = {
    "ttft_ms": 2,
    "itl_ms": 0,
    "gateway": {
        "users": {"alice": "s3cret"},
        "api_keys": {
            "sk-free": {},
            "sk-limited": {"rate_limit_rps": 1, "burst": 2},
            "sk-budget": {"token_budget": 10},
        },
    },
}
CHAT = "/v1/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


@pytest.fixture(scope="module")
def server() -> Iterator[MockProcess]:
    with MockProcess(BASE) as mock:
        yield mock


@pytest.fixture
def mock(server: MockProcess) -> MockProcess:
    settings = to_dict(from_mapping(BASE))
    del settings["host"], settings["port"]
    server.configure(settings)
    server.revoke()
    server.reset()
    return server


def call(mock: MockProcess, key: str | None) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    status, hdrs, body = mock.request("POST", CHAT, BODY, headers)
    return status, hdrs, json.loads(body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_gives_a_token_pair_and_admin_pages_need_the_access_token(mock: MockProcess) -> None:
    status, _, body = mock.request("POST", "/auth/login", {"username": "alice", "password": "wrong"})
    assert status == 401 and json.loads(body)["error"]["type"] == "invalid_credentials"
    pair = mock.post_json("/auth/login", {"username": "alice", "password": "s3cret"})
    assert pair["token_type"] == "bearer" and pair["expires_in"] == 900
    assert pair["access_token"] != pair["refresh_token"]
    for page in ("/admin/dashboard", "/admin/usage", "/admin/keys"):
        assert mock.request("GET", page)[0] == 401
        assert mock.request("GET", page, headers=bearer("forged"))[0] == 401
        assert mock.request("GET", page, headers=bearer(pair["access_token"]))[0] == 200
    keys = mock.get_json("/admin/keys", bearer(pair["access_token"]))["keys"]
    assert {k["key"] for k in keys} == {"sk...", "sk-...ited", "sk-...dget"}  # masked (short keys: prefix only)


def test_refresh_rotates_the_pair_and_revoke_ends_every_session(mock: MockProcess) -> None:
    pair = mock.post_json("/auth/login", {"username": "alice", "password": "s3cret"})
    new = mock.post_json("/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert new["access_token"] != pair["access_token"]
    status, _, body = mock.request("POST", "/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert status == 401 and json.loads(body)["error"]["type"] == "invalid_token"  # used up
    assert mock.revoke() == {"revoked_access_tokens": 2, "revoked_refresh_tokens": 1}
    status, _, body = mock.request("GET", "/admin/dashboard", headers=bearer(new["access_token"]))
    assert status == 401 and json.loads(body)["error"]["type"] == "token_revoked"
    status, _, body = mock.request("POST", "/auth/refresh", {"refresh_token": new["refresh_token"]})
    assert status == 401 and json.loads(body)["error"]["type"] == "token_revoked"


def test_expired_tokens_are_refused(mock: MockProcess) -> None:
    mock.configure({"gateway": {"access_token_ttl_s": 0.2, "refresh_token_ttl_s": 0.2}})
    pair = mock.post_json("/auth/login", {"username": "alice", "password": "s3cret"})
    time.sleep(0.25)
    status, headers, body = mock.request("GET", "/admin/usage", headers=bearer(pair["access_token"]))
    assert status == 401 and json.loads(body)["error"]["type"] == "token_expired"
    assert headers["www-authenticate"].startswith("Bearer")
    assert mock.request("POST", "/auth/refresh", {"refresh_token": pair["refresh_token"]})[0] == 401


def test_api_keys_anonymous_unknown_and_required(mock: MockProcess) -> None:
    assert call(mock, None)[0] == 200  # anonymous accepted by default
    assert call(mock, "sk-free")[0] == 200
    status, _, body = call(mock, "sk-stolen")
    assert status == 401 and body["error"]["type"] == "invalid_api_key"  # unknown key: always 401
    mock.configure({"gateway": {"require_api_key": True}})
    status, _, body = call(mock, None)
    assert status == 401 and body["error"]["type"] == "missing_api_key"
    stats = mock.stats()
    assert stats["unauthorized"] == 2 and stats["statuses"][f"POST {CHAT}"] == {"200": 2, "401": 2}


def test_rate_limit_answers_429_with_retry_after_and_counts(mock: MockProcess) -> None:
    # one token every 2 s after a burst of 2: the four calls below (a few ms each) cannot see a refill even on
    # a busy machine, which the elapsed time checks
    mock.configure({"gateway": {"api_keys": {"sk-limited": {"rate_limit_rps": 0.5, "burst": 2}}}})
    started = time.monotonic()
    results = [call(mock, "sk-limited") for _ in range(4)]
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the four calls took {elapsed:.1f} s: a token may have been refilled"
    assert [r[0] for r in results] == [200, 200, 429, 429]  # burst 2, then 1 per 2 s
    _, headers, body = results[2]
    assert headers["retry-after"] == "2"
    assert body["error"]["type"] == "rate_limit_exceeded"
    time.sleep(2.0 - (time.monotonic() - started) + 0.05)  # a token refilled since the first call
    assert call(mock, "sk-limited")[0] == 200
    stats = mock.stats()
    assert stats["rate_limited"] == 2
    assert stats["per_key"]["sk-limited"]["rate_limited"] == 2
    assert stats["statuses"][f"POST {CHAT}"] == {"200": 3, "429": 2}


def test_token_budget_answers_402_once_used_up(mock: MockProcess) -> None:
    assert call(mock, "sk-budget")[0] == 200  # 10 completion tokens: the whole budget
    status, _, body = call(mock, "sk-budget")
    assert status == 402
    assert body["error"]["type"] == "budget_exceeded" and body["error"]["code"] == "budget_exceeded"
    assert call(mock, "sk-free")[0] == 200  # other keys are not affected
    stats = mock.stats()
    assert stats["budget_exceeded"] == 1 and stats["per_key"]["sk-budget"]["budget_remaining"] == 0
    usage = mock.get_json("/admin/usage", bearer(mock.post_json("/auth/login",
                          {"username": "alice", "password": "s3cret"})["access_token"]))["usage"]  # fmt: skip
    assert usage["sk-...dget"]["completion_tokens"] == 10
    mock.reset()  # budgets start over
    assert call(mock, "sk-budget")[0] == 200


@pytest.mark.timing  # the mock's own 30 + 10 ms waits bounded by 20 ms: a loaded machine delays its event loop
def test_overhead_and_policy_headers_report_the_time_waited(mock: MockProcess) -> None:
    mock.configure({"gateway": {"gateway_overhead_ms": 30, "policy_ms": 10}})
    for stream in (False, True):
        t0 = time.perf_counter()
        res = stream_request(mock.base_url, CHAT, {**BODY, "stream": stream})
        elapsed_ms = (time.perf_counter() - t0) * 1000
        overhead = float(res.headers["x-litellm-overhead-duration-ms"])
        timing = dict(re.findall(r"(\w+);dur=([\d.]+)", res.headers["server-timing"]))
        assert 40 <= overhead < 60 and float(timing["gateway"]) == overhead
        assert 10 <= float(timing["policy"]) < 20
        assert elapsed_ms >= overhead
    status, headers, _ = call(mock, "sk-stolen")  # refusals carry them too
    assert status == 401 and float(headers["x-litellm-overhead-duration-ms"]) >= 40


def test_health(mock: MockProcess) -> None:
    assert mock.get_json("/health") == {"status": "ok"}
