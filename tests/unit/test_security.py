"""The pure parts of the security rules: masking, origins and binding, the start-form check, the login's
limits, and the mock's control-endpoint rule."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llm_metrics.engine.masking import redact, redact_obj, redact_userinfo, safe_url, short_secrets, url_secrets
from llm_metrics.outputs.weblogin import FailureLimit, credentials_match
from llm_metrics.state import state as suite_state
from llm_users.common.options import target_settings
from llm_users.common.security import SecurityState, check_form, confined
from llm_users.common.target_binding import LocalSecrets, allowed, effective_target, origin
from mock_llm.app import MockApp
from mock_llm.config import Config
from mock_llm.protocol import is_loopback

SECRETS = ['pa"ss\\wörd-1', "sk-ä-key/+&=x", "plain-secret-1"]


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize(
    "spelling",
    [
        lambda s: s,
        lambda s: json.dumps(s)[1:-1],
        lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
        lambda s: urllib.parse.quote(s, safe=""),
        lambda s: urllib.parse.quote_plus(s),
        lambda s: urllib.parse.quote(s, safe="").lower(),
    ],
)
def test_every_written_spelling_of_a_secret_is_masked(secret: str, spelling: Any) -> None:
    written = spelling(secret)
    text = f"before {written} after"
    out = redact(text, [secret])
    assert written not in out and out.startswith("before ") and out.endswith(" after"), out


def test_masking_in_a_json_document_and_in_html() -> None:
    secret = SECRETS[0]
    doc = json.dumps({"k": f"x {secret} y", secret: 1}, indent=2)
    assert secret not in redact(doc, [secret]) and json.dumps(secret)[1:-1] not in redact(doc, [secret])
    assert json.loads(redact(doc, [secret]))["k"] == "x *** y"  # still valid JSON
    assert redact_obj({"a": [f"<{secret}>"], secret: 2}, [secret]) == {"a": ["<***>"], "***": 2}
    html = "<td>pa&quot;ss\\wörd-1</td>"
    assert "pa&quot;ss" not in redact(html, [secret])


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("host https://user:pa%40ss@llm.example:8443/v1 ok", "host https://***@llm.example:8443/v1 ok"),
        ('"host": "http://tok@127.0.0.1:8000"', '"host": "http://***@127.0.0.1:8000"'),
        ("http://127.0.0.1:8000/path?x=a@b", "http://127.0.0.1:8000/path?x=a@b"),  # no user information
        ("mail me: a@b.c", "mail me: a@b.c"),
        ("filename=Locust_chat.py_http://u:p@127.0.0.1:9.html", "filename=Locust_chat.py_http://***@127.0.0.1:9.html"),
    ],
)
def test_user_information_of_urls_is_masked(text: str, want: str) -> None:
    assert redact_userinfo(text) == want
    assert redact(text, []) == want


def test_pushgateway_urls_in_log_lines() -> None:
    url = "https://ci:push-T0ken@pg.example:9091/path?token=qwertyuiop"
    assert safe_url(url) == "https://pg.example:9091"
    assert set(url_secrets(url)) == {"ci", "push-T0ken", "qwertyuiop"}
    assert safe_url("not a url") == "<URL without scheme or host>"


def test_short_secrets_are_named() -> None:
    assert short_secrets({"--api-key": "abc", "--loadtest-token": "", "PW": "12345678"}) == ["--api-key"]


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"),
        ("HTTPS://LLM.example/v1", "https://llm.example:443"),
        ("http://llm.example", "http://llm.example:80"),
        ("http://user:pw@llm.example:80/x", "http://llm.example:80"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("llm.example:80", ""),
        ("", ""),
    ],
)
def test_origin(url: str, want: str) -> None:
    assert origin(url) == want


def test_secrets_go_to_their_origin_only() -> None:
    assert allowed("http://a:1/v1", "http://a:1")
    assert not allowed("http://a:2/v1", "http://a:1")
    assert not allowed("https://a:1", "http://a:1")  # the scheme is part of the origin
    assert allowed("http://a:1", "")  # not bound yet: bound to this target
    local = LocalSecrets({"api_key": "k" * 8}, "http://w:1")
    assert allowed("http://w:1", "http://a:1", local) and not allowed("http://a:1", "http://a:1", local)
    assert effective_target({"base": "", "base_url": "http://b:1", "host": "http://h:1"}, None, "d") == "http://b:1"
    assert effective_target({"host": "http://h:1"}, None, "d") == "http://h:1"


def opts(**kw: Any) -> SimpleNamespace:
    base = {"api_key": "sk-12345678", "loadtest_token": "lt-12345678", "idle_timeout": 60.0, "call_timeout": 60.0}
    return SimpleNamespace(**{**base, "server_stamps": "false", "secrets_origin": "http://a:1", **kw})


def test_target_settings_drop_the_secrets_for_another_origin() -> None:
    same = target_settings(opts(), "http://a:1")
    assert same.api_key == "sk-12345678" and same.dropped == ()
    assert same.headers_for("http://a:1/v1/x")["Authorization"] == "Bearer sk-12345678"
    assert same.headers_for("http://evil:1/v1/x") == {}
    other = target_settings(opts(), "http://b:1")
    assert other.auth_headers() == {} and other.dropped == ("api_key", "loadtest_token")
    local = LocalSecrets({"api_key": "sk-worker-own"}, "http://b:1")
    mine = target_settings(opts(api_key=""), "http://b:1", local)
    assert mine.api_key == "sk-worker-own" and mine.loadtest_token == ""


class Form(dict[str, str]):
    pass


def env_with(**kw: Any) -> SimpleNamespace:
    o = opts(host="http://a:1", base="", html_report="", dataset="", pushgateway="", **kw)
    ui = SimpleNamespace(template_args={"extra_options": {"api_key": {}, "loadtest_token": {}, "base": {},
                                                          "html_report": {}, "dataset": {}}})  # fmt: skip
    return SimpleNamespace(parsed_options=o, web_ui=ui, host="http://a:1")


def state(env: SimpleNamespace, on_workers: bool = False) -> SecurityState:
    o = env.parsed_options
    return SecurityState({"api_key": o.api_key, "loadtest_token": o.loadtest_token}, "http://a:1", on_workers)


def test_the_start_form_check(tmp_path: Path) -> None:
    env = env_with()
    st = state(env)
    o = env.parsed_options
    same = Form(host="http://a:1", user_count="1")
    assert check_form(env, st, same, tmp_path) == ""
    moved = Form(host="http://b:2")
    first = check_form(env, st, moved, tmp_path)
    assert "API_KEY, LOADTEST_TOKEN are bound to http://a:1 and will NOT be sent to http://b:2." in first
    assert o.api_key  # refused once, nothing dropped yet
    assert check_form(env, st, moved, tmp_path) == ""  # confirmed: dropped
    assert o.api_key == "" and o.loadtest_token == "" and o.secrets_origin == "http://b:2"
    assert check_form(env, st, same, tmp_path) == ""  # back to the start-up target: its secrets are back
    assert o.api_key == "sk-12345678" and o.secrets_origin == "http://a:1"
    typed = Form(host="http://c:3", api_key="sk-typed-again")
    assert check_form(env, st, typed, tmp_path) == ""
    assert o.secrets_origin == "http://c:3" and o.loadtest_token == ""  # the one not typed is dropped
    assert (
        check_form(env, st, Form(api_key="short"), tmp_path) == "api_key: secrets shorter than 8 characters are refused"
    )
    assert "not settable" in check_form(env, st, Form(secrets_origin="http://c:3"), tmp_path)
    assert "not settable" in check_form(env, st, Form(pushgateway="http://x"), tmp_path)
    assert "different servers" in check_form(env, st, Form(host="http://c:3", base="http://d:4"), tmp_path)
    workers = env_with()
    assert "secrets-on-workers" in check_form(workers, state(workers, True), Form(api_key="sk-typed-1"), tmp_path)


def test_ui_paths_stay_in_out_and_conf(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "conf").mkdir()
    (tmp_path / "out" / "link").symlink_to("/etc")
    assert confined("out/report.html", tmp_path) and confined("conf/x.yaml", tmp_path)
    assert confined(str(tmp_path / "out" / "r.html"), tmp_path)
    for bad in ("/etc/passwd", "out/../x.html", "out/link/passwd", "report.html", "outside/out/x"):
        assert not confined(bad, tmp_path), bad
    env = env_with()
    msg = check_form(env, state(env), Form(html_report="/tmp/r.html"), tmp_path)
    assert msg.startswith("html_report: '/tmp/r.html' is outside out/ and conf/")
    assert check_form(env, state(env), Form(html_report="out/r.html", dataset=""), tmp_path) == ""


def test_failed_logins_are_bounded_per_minute() -> None:
    now = [0.0]
    limit = FailureLimit(3, 60.0, clock=lambda: now[0])
    for _ in range(3):
        assert not limit.blocked()
        limit.fail()
    assert limit.blocked() and 59.0 < limit.retry_after_s() <= 60.0
    now[0] = 60.0
    assert not limit.blocked()
    assert credentials_match("locust", "pw-right-1", "locust", "pw-right-1")
    assert not credentials_match("locust", "pw-right", "locust", "pw-right-1")
    assert not credentials_match("admin", "pw-right-1", "locust", "pw-right-1")


class FakeConn:
    def __init__(self, loopback: bool) -> None:
        self.peer_loopback = loopback


def test_mock_control_endpoints_answer_loopback_or_the_token() -> None:
    app = MockApp(Config())
    req = SimpleNamespace(headers={})
    assert app.control_allowed(req, FakeConn(True))  # type: ignore[arg-type]
    assert not app.control_allowed(req, FakeConn(False))  # type: ignore[arg-type]
    app.control_token = "ctl-token-123"
    assert not app.control_allowed(req, FakeConn(True))  # type: ignore[arg-type]
    ok = SimpleNamespace(headers={b"x-mock-control-token": b"ctl-token-123"})
    assert app.control_allowed(ok, FakeConn(False))  # type: ignore[arg-type]
    assert [
        is_loopback(p) for p in (("127.0.0.1", 1), ("::1", 1, 0, 0), ("::ffff:127.0.0.1", 1), ("192.0.2.2", 1))
    ] == [
        True,
        True,
        True,
        False,
    ]
    assert not is_loopback(None)


def test_a_worker_started_without_the_mode_of_its_master_says_so(caplog: pytest.LogCaptureFixture) -> None:
    from llm_users.common.security import check_worker_mode

    worker = SimpleNamespace(parsed_options=opts(worker=True, secrets_on_workers="true"))
    suite_state(worker).set_runtime("security", SecurityState({}, "http://a:1", False))  # started without the mode
    check_worker_mode(worker)
    assert "start it with SECRETS_ON_WORKERS=true" in caplog.text
    caplog.clear()
    suite_state(worker).set_runtime("security", SecurityState({}, "http://a:1", True))
    check_worker_mode(worker)
    worker.parsed_options.secrets_on_workers = "false"
    suite_state(worker).set_runtime("security", SecurityState({}, "http://a:1", False))
    check_worker_mode(worker)
    assert caplog.text == ""


def test_web_ui_answers_are_masked_text_only() -> None:
    from flask import Response

    from llm_metrics.outputs.webui_mask import mask_answer

    url = "http://u-ser:pw-xyz-1234@127.0.0.1:9"
    page = mask_answer(Response(f"<p>{url}</p> key sk-secret-9876", mimetype="text/html"), ["sk-secret-9876"])
    assert page.get_data(as_text=True) == "<p>http://***@127.0.0.1:9</p> key ***"
    data = mask_answer(Response(json.dumps({"host": url}), mimetype="application/json"), [])
    assert json.loads(data.get_data(as_text=True)) == {"host": "http://***@127.0.0.1:9"}
    digits = mask_answer(
        Response(json.dumps({"n": 123456789, "s": "x12345678"}), mimetype="application/json"), ["12345678"]
    )
    assert json.loads(digits.get_data(as_text=True)) == {"n": 123456789, "s": "x***"}  # still JSON
    blob = Response(url.encode(), mimetype="application/octet-stream", headers={"Content-Disposition": f"a;f=_{url}"})
    blob = mask_answer(blob, [])
    assert blob.get_data() == url.encode() and blob.headers["Content-Disposition"] == "a;f=_http://***@127.0.0.1:9"


def test_start_form_fields_sent_back_masked_mean_unchanged() -> None:
    from llm_metrics.outputs.webui_mask import restore_masked_fields

    shown = {"host": "http://u-ser:pw-xyz-1234@127.0.0.1:9", "base": "http://127.0.0.1:9", "note": "sk-secret-9876"}
    secrets = ["sk-secret-9876"]
    form = {"host": "http://***@127.0.0.1:9", "base": "http://***@127.0.0.1:9", "note": "***", "user_count": "1"}
    # base was shown unmasked: a masked value typed there is new input, kept
    assert restore_masked_fields(form, shown, secrets) == {"host": shown["host"], "note": "sk-secret-9876"}
    typed = {"host": "http://other:pw@127.0.0.1:9", "note": ""}
    assert restore_masked_fields(typed, shown, secrets) == {}
