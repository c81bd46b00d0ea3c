"""Specification of the status classification (llm_users.gateway.status): ok, failure, blocked, budget."""

from __future__ import annotations

import json

import pytest

from llm_users.gateway.status import BLOCKED, BUDGET, StatusPolicy, classify, error_codes, parse_statuses


def err(type_: str | None = None, code: str | None = None) -> bytes:
    e: dict[str, object] = {"message": "x"}
    if type_ is not None:
        e["type"] = type_
    if code is not None:
        e["code"] = code
    return json.dumps({"error": e}).encode()


DEFAULT = StatusPolicy()
STRICT = StatusPolicy(blocked_are_failures=True)
CUSTOM = StatusPolicy(
    expected=((200, 299), (404, 404)),
    blocked=((429, 429), (503, 503)),
    budget=(),
    budget_error_codes=frozenset({"quota_spent"}),
)


@pytest.mark.parametrize(
    ("policy", "status", "body", "kind", "failed", "reason"),
    [
        # the default: 429 and budget answers are counted apart, not failures
        (DEFAULT, 200, b"{}", "ok", False, None),
        (DEFAULT, 204, b"", "ok", False, None),
        (DEFAULT, 302, b"", "ok", False, None),  # k6's default expected statuses are 200-399
        (
            DEFAULT,
            429,
            err("rate_limit_exceeded", "rate_limit_exceeded"),
            BLOCKED,
            False,
            "HTTP 429: rate_limit_exceeded",
        ),
        (DEFAULT, 429, b"", BLOCKED, False, "HTTP 429"),
        (DEFAULT, 402, err("budget_exceeded", "budget_exceeded"), BUDGET, False, "HTTP 402: budget_exceeded"),
        (DEFAULT, 402, b"not json", BUDGET, False, "HTTP 402"),
        # OpenAI answers a spent quota with 429 insufficient_quota: a budget answer, not a rate limit
        (DEFAULT, 429, err("insufficient_quota", "insufficient_quota"), BUDGET, False, "HTTP 429: insufficient_quota"),
        # LiteLLM: 400 with type budget_exceeded
        (DEFAULT, 400, err("budget_exceeded", "400"), BUDGET, False, "HTTP 400: budget_exceeded"),
        (DEFAULT, 400, json.dumps({"error": "budget_exceeded"}).encode(), BUDGET, False, "HTTP 400: budget_exceeded"),
        (DEFAULT, 403, json.dumps({"code": "Budget_Exceeded"}).encode(), BUDGET, False, "HTTP 403: budget_exceeded"),
        (DEFAULT, 400, err("invalid_request_error"), "failure", True, "HTTP 400: invalid_request_error"),
        (DEFAULT, 401, err("invalid_api_key", "invalid_api_key"), "failure", True, "HTTP 401: invalid_api_key"),
        (DEFAULT, 500, err("mock_fault", "500"), "failure", True, "HTTP 500: mock_fault"),
        (DEFAULT, 503, b"<html>", "failure", True, "HTTP 503"),
        (DEFAULT, 0, b"", "failure", True, "no response"),
        # a budget code in a 2xx body is not a refusal
        (DEFAULT, 200, err("budget_exceeded"), "ok", False, None),
        # blocked_are_failures: counted apart and failed (k6's default behaviour)
        (STRICT, 429, err("rate_limit_exceeded"), BLOCKED, True, "HTTP 429: rate_limit_exceeded"),
        (STRICT, 402, err("budget_exceeded"), BUDGET, True, "HTTP 402: budget_exceeded"),
        (STRICT, 200, b"{}", "ok", False, None),
        # custom: 404 expected, 503 blocked, no budget status, another budget code
        (CUSTOM, 404, b"", "ok", False, None),
        (CUSTOM, 302, b"", "failure", True, "HTTP 302"),
        (CUSTOM, 503, b"", BLOCKED, False, "HTTP 503"),
        (CUSTOM, 402, err("budget_exceeded"), "failure", True, "HTTP 402: budget_exceeded"),
        (CUSTOM, 429, err("quota_spent"), BUDGET, False, "HTTP 429: quota_spent"),
    ],
)
def test_classify(policy: StatusPolicy, status: int, body: bytes, kind: str, failed: bool, reason: str | None) -> None:
    out = classify(status, body, policy)
    assert (out.kind, out.failed, out.reason) == (kind, failed, reason)
    assert out.counted_apart is (kind in (BLOCKED, BUDGET))


@pytest.mark.parametrize(
    ("body", "codes"),
    [
        (err("rate_limit_exceeded", "rate_limit_exceeded"), ("rate_limit_exceeded",)),
        (err("invalid_request_error", "Budget_Exceeded"), ("invalid_request_error", "budget_exceeded")),
        (json.dumps({"error": " Quota "}).encode(), ("quota",)),
        (json.dumps({"type": "a", "code": 402}).encode(), ("a",)),
        (json.dumps({"error": {"code": "x"}, "code": "y"}).encode(), ("x", "y")),
        (b"[1, 2]", ()),
        (b"{not json", ()),
        (b"\xff\xfe", ()),
        (b"", ()),
        (None, ()),
    ],
)
def test_error_codes(body: bytes | None, codes: tuple[str, ...]) -> None:
    assert error_codes(body) == codes


@pytest.mark.parametrize(
    ("value", "ranges"),
    [
        (["200-399"], ((200, 399),)),
        ([200, "204", " 300 - 302 "], ((200, 200), (204, 204), (300, 302))),
        (429, ((429, 429),)),
        ("200-299", ((200, 299),)),
        ([], ()),
    ],
)
def test_parse_statuses(value: object, ranges: tuple[tuple[int, int], ...]) -> None:
    assert parse_statuses(value, "statuses.expected") == ranges


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": 1}, "statuses.expected: expected a list of statuses and ranges"),
        ([200, "ok"], "statuses.expected[1]: expected a status such as 429 or a range such as \"200-399\", got 'ok'"),
        ([True], "statuses.expected[0]: expected a status such as 429"),
        ([99], "statuses.expected[0]: expected statuses within 100-599 (low end first), got 99"),
        (["399-200"], "statuses.expected[0]: expected statuses within 100-599 (low end first), got '399-200'"),
        ([2.5], "statuses.expected[0]: expected a status"),
    ],
)
def test_parse_statuses_errors_name_the_key(value: object, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_statuses(value, "statuses.expected")
    assert message in str(e.value)


def test_pure_modules_do_not_import_locust() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import llm_users.gateway.status, llm_users.gateway.headers, llm_users.gateway.recovery, "
        "llm_users.gateway.metrics, llm_users.gateway.config, llm_users.gateway.options; "
        "assert 'locust' not in sys.modules and 'gevent' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
