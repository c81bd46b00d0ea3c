"""Specification of the gateway configuration (llm_users.gateway.config) and knobs (gateway_options)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from llm_users.gateway.config import (
    DEFAULT_CONF,
    AuthConfig,
    GatewayConfig,
    GatewayConfigError,
    load_gateway_config,
    lookup,
    parse_gateway_config,
    render,
)
from llm_users.gateway.headers import GATEWAY_PRESETS, POLICY_PRESETS
from llm_users.gateway.options import OptionError, gateway_settings
from llm_users.gateway.recovery import RecoveryParams
from llm_users.gateway.status import StatusPolicy
from mock_llm.config import Config


def test_the_shipped_file_holds_the_defaults() -> None:
    conf = load_gateway_config(DEFAULT_CONF)
    defaults = GatewayConfig(source=str(DEFAULT_CONF))
    assert conf == defaults
    assert conf.tasks == {"llm": 4, "llm_stream": 2, "health": 2, "admin": 2}
    assert (conf.wait_min_s, conf.wait_max_s) == (0.5, 1.5)
    assert conf.gateway_latency == GATEWAY_PRESETS["auto"]
    assert conf.policy_check_latency == POLICY_PRESETS["server-timing"]
    assert conf.statuses == StatusPolicy()
    assert conf.recovery == RecoveryParams()


def test_the_defaults_fit_the_built_in_mock() -> None:
    """Paths of mock_llm/api_gateway.py and the mock's default user (mock_llm/default.yaml)."""
    from mock_llm.api_gateway import ROUTES

    routes = {(method, path) for method, path, _, _ in ROUTES}
    conf = GatewayConfig()
    assert ("POST", conf.auth.login_path) in routes
    assert ("POST", conf.auth.refresh_path) in routes
    assert ("GET", conf.health_path) in routes
    assert {("GET", p) for p in conf.admin_paths} <= routes
    assert conf.llm_path == "/v1/chat/completions"
    assert Config().gateway.users == {conf.auth.username: conf.auth.password}
    assert conf.llm_payload["model"] in Config().models


def test_an_empty_file_is_all_defaults(tmp_path: Path) -> None:
    p = tmp_path / "g.yaml"
    p.write_text("# nothing\n")
    assert load_gateway_config(p) == GatewayConfig(source=str(p))


def test_every_section_can_be_changed() -> None:
    conf = parse_gateway_config(
        {
            "wait_time": {"constant": 1},
            "tasks": {"llm": 1, "admin": 0},
            "llm": {"path": "/chat", "payload": {"model": "m", "messages": []}, "include_usage": False},
            "health": {"path": "/healthz"},
            "admin": {"paths": ["/a", "/b"]},
            "auth": {
                "enabled": False,
                "login": {"path": "/login", "body": {"email": "${username}", "pw": "${password}"}},
                "refresh": {"path": "/token", "body": {"grant": "refresh", "token": "${refresh_token}"}},
                "username": "ops",
                "password": "pw",
                "response": {"access_token": "data.at", "refresh_token": "data.rt", "expires_in": "data.ttl"},
                "refresh_before_expiry_s": 5,
                "default_expires_in_s": 60,
                "retry_after_failure_s": 0,
            },
            "metrics": {"gateway_latency": ["kong", {"header": "X-T", "unit": "s"}], "policy_check_latency": "off"},
            "statuses": {
                "expected": ["200-299"],
                "blocked": [429, 503],
                "budget": [],
                "budget_error_codes": ["Quota"],
                "blocked_are_failures": True,
            },
            "recovery": {"window_s": 5, "hold_s": 3, "percentile": 99, "scale_with_time_scale": False},
        },
        "g.yaml",
    )
    assert (conf.wait_min_s, conf.wait_max_s) == (1.0, 1.0)
    assert conf.tasks == {"llm": 1, "llm_stream": 2, "health": 2, "admin": 0}
    assert (conf.llm_path, conf.include_usage, conf.health_path, conf.admin_paths) == (
        "/chat",
        False,
        "/healthz",
        ("/a", "/b"),
    )
    assert conf.auth == AuthConfig(
        enabled=False,
        login_path="/login",
        login_body={"email": "${username}", "pw": "${password}"},
        refresh_path="/token",
        refresh_body={"grant": "refresh", "token": "${refresh_token}"},
        username="ops",
        password="pw",
        access_token_field="data.at",
        refresh_token_field="data.rt",
        expires_in_field="data.ttl",
        refresh_before_expiry_s=5,
        default_expires_in_s=60,
        retry_after_failure_s=0,
    )
    assert [s.describe() for s in conf.gateway_latency] == ["X-Kong-Proxy-Latency", "X-T"]
    assert conf.policy_check_latency == ()
    assert conf.statuses == StatusPolicy(
        expected=((200, 299),),
        blocked=((429, 429), (503, 503)),
        budget=(),
        budget_error_codes=frozenset({"quota"}),
        blocked_are_failures=True,
    )
    assert conf.recovery == RecoveryParams(window_s=5, hold_s=3, percentile=99, scale_with_time_scale=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tasks: {llm: -1}", "tasks.llm: expected a non-negative integer weight, got -1"),
        ("tasks: {llm: 1.5}", "tasks.llm: expected a non-negative integer weight, got 1.5"),
        ("tasks: {chat: 1}", "tasks.chat: unknown key (expected one of: llm, llm_stream, health, admin)"),
        ("tasks: {llm: 0, llm_stream: 0, health: 0, admin: 0}", "tasks: expected at least one task with a weight > 0"),
        ("wait_time: {min: 2, max: 1}", "wait_time.max: expected a number >= wait_time.min (2), got 1"),
        ("wait_time: {min: -1}", "wait_time.min: expected a number >= 0, got -1"),
        ("wait_time: {constant: 1, max: 2}", "wait_time.constant: give either constant, or min and max"),
        ("wait_time: fast", "wait_time: expected a mapping, got 'fast'"),
        ("llm: {path: v1/chat}", "llm.path: expected a URL path starting with '/', got 'v1/chat'"),
        ("llm: {payload: [1]}", "llm.payload: expected a non-empty mapping (the JSON body), got a list"),
        ("llm: {payload: {stream: true}}", "llm.payload.stream: set by the task"),
        ("llm: {include_usage: yes please}", "llm.include_usage: expected true or false, got 'yes please'"),
        ("admin: {paths: []}", "admin.paths: expected a non-empty list of URL paths, got an empty list"),
        ("admin: {paths: [/a, b]}", "admin.paths[1]: expected a URL path starting with '/', got 'b'"),
        ("auth: {login: {path: 3}}", "auth.login.path: expected a URL path starting with '/', got 3"),
        ("auth: {login: {body: x}}", "auth.login.body: expected a mapping (the JSON body), got 'x'"),
        ("auth: {refresh: {url: /r}}", "auth.refresh.url: unknown key (expected one of: path, body)"),
        ("auth: {password: 1234}", "auth.password: expected a string, got 1234"),
        ("auth: {response: {access_token: 'a b'}}", "auth.response.access_token: expected a JSON field name"),
        ("auth: {refresh_before_expiry_s: -5}", "auth.refresh_before_expiry_s: expected a number >= 0, got -5"),
        ("auth: {default_expires_in_s: 0}", "auth.default_expires_in_s: expected a number > 0, got 0"),
        ("auth: {enabled: 1}", "auth.enabled: expected true or false, got 1"),
        ("metrics: {gateway_latency: nginx}", "metrics.gateway_latency: unknown preset 'nginx'"),
        (
            "metrics: {gateway_latency: [kong, {header: X, unit: us}]}",
            "metrics.gateway_latency[1].unit: expected ms or s",
        ),
        ("metrics: {policy_check_latency: kong}", "metrics.policy_check_latency: unknown preset 'kong'"),
        (
            "metrics: {gateway: kong}",
            "metrics.gateway: unknown key (expected one of: gateway_latency, policy_check_latency)",
        ),
        ("statuses: {expected: [200-299, abc]}", "statuses.expected[1]: expected a status such as 429"),
        ("statuses: {expected: []}", "statuses.expected: expected at least one status"),
        ("statuses: {blocked: [600]}", "statuses.blocked[0]: expected statuses within 100-599"),
        ("statuses: {budget_error_codes: budget}", "statuses.budget_error_codes: expected a list of error codes"),
        ("statuses: {blocked_are_failures: maybe}", "statuses.blocked_are_failures: expected true or false"),
        ("recovery: {window_s: 0}", "recovery.window_s: expected a number > 0, got 0"),
        ("recovery: {percentile: 101}", "recovery.percentile: expected a percentile in (0, 100], got 101"),
        ("recovery: {tolerance: -0.1}", "recovery.tolerance: expected a number >= 0, got -0.1"),
        ("thresholds: {}", "thresholds: unknown key (expected one of: wait_time, tasks, llm"),
        ("- 1\n- 2", "expected a mapping, got a list"),
        ("tasks: {llm: 1}\ntasks: {health: 1}", "line 2: duplicate key 'tasks'"),
        ("tasks: {llm: [1", "line 2:"),
    ],
)
def test_bad_entries_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "gateway.yaml"
    p.write_text(text + "\n")
    with pytest.raises(GatewayConfigError) as e:
        load_gateway_config(p)
    assert str(e.value).startswith(f"{p}: "), str(e.value)
    assert message in str(e.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match=r"/nope\.yaml: gateway configuration file not found"):
        load_gateway_config(tmp_path / "nope.yaml")


def test_render_replaces_the_placeholders_everywhere() -> None:
    template = {"user": "${username}", "auth": {"pw": "${password}", "list": ["${refresh_token}", 3]}, "n": None}
    values = {"username": "u", "password": "p:${x}", "refresh_token": "rt"}
    assert render(template, values) == {"user": "u", "auth": {"pw": "p:${x}", "list": ["rt", 3]}, "n": None}
    assert render("Bearer ${other}", values) == "Bearer ${other}"
    assert template["auth"] == {"pw": "${password}", "list": ["${refresh_token}", 3]}  # not changed


@pytest.mark.parametrize(
    ("obj", "path", "value"),
    [
        ({"access_token": "a"}, "access_token", "a"),
        ({"data": {"token": {"value": "v"}}}, "data.token.value", "v"),
        ({"data": {}}, "data.token", None),
        ({"data": ["x"]}, "data.0", None),
        ("text", "a", None),
    ],
)
def test_lookup(obj: object, path: str, value: object) -> None:
    assert lookup(obj, path) == value


def opts(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "base_url": "",
        "host": None,
        "api_key": "",
        "loadtest_token": "",
        "admin_password": "",
        "gateway_conf": "conf/gateway.yaml",
        "idle_timeout": 60.0,
        "call_timeout": 600.0,
        "server_stamps": "false",
    }
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize(
    ("kw", "base_url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"host": "http://gw:9000/"}, "http://gw:9000"),
        ({"host": "http://gw:9000", "base_url": "https://api.example.com/"}, "https://api.example.com"),
    ],
)
def test_base_url_falls_back_to_host_then_the_mock(kw: dict[str, object], base_url: str) -> None:
    assert gateway_settings(opts(**kw)).base_url == base_url


def test_the_password_knob_wins_over_the_file_and_is_a_secret() -> None:
    assert gateway_settings(opts()).password == "mock-admin-password"
    s = gateway_settings(opts(admin_password="s3cret", api_key="sk-1"))
    assert s.password == "s3cret"
    assert set(s.secrets()) == {"s3cret", "sk-1", "mock-admin-password"}  # the conf's password is masked too


def test_bad_knobs_name_the_flag(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="--base-url/BASE_URL: expected an http:// or https:// URL, got 'gw:80'"):
        gateway_settings(opts(base_url="gw:80"))
    with pytest.raises(GatewayConfigError, match="gateway configuration file not found"):
        gateway_settings(opts(gateway_conf=str(tmp_path / "missing.yaml")))


def test_conf_file_yaml_is_plain_yaml() -> None:
    """The shipped file parses with a plain safe loader too (no tags, no anchors needed)."""
    data = yaml.safe_load(DEFAULT_CONF.read_text())
    assert set(data) == {"wait_time", "tasks", "llm", "health", "admin", "auth", "metrics", "statuses", "recovery"}


def test_the_conf_files_password_stays_with_the_start_up_target() -> None:
    start = {"secrets_origin": "http://a:1", "secrets_startup_origin": "http://a:1"}
    assert gateway_settings(opts(base_url="http://a:1", **start)).password == "mock-admin-password"
    # the web UI re-bound the secrets to another target, with an API key typed again but no password:
    moved = opts(base_url="http://b:2", api_key="sk-typed-again", secrets_origin="http://b:2")
    moved.secrets_startup_origin = "http://a:1"
    s = gateway_settings(moved)
    assert s.target.api_key == "sk-typed-again" and s.password == ""  # the conf's password is not sent there
    typed = opts(base_url="http://b:2", admin_password="pw-typed-again", secrets_origin="http://b:2")
    assert gateway_settings(typed).password == "pw-typed-again"
