"""Secrets stay with the server they were configured for, whatever the web UI's start form says.

Each suite is started with its secrets and the mock as its target; the web UI's start form then points the run
at a capture server (``CaptureServer``: it keeps every byte it is sent and answers 503). The first such form is
refused with a message naming the secrets that will not be sent; the second starts the run without them: the
capture server receives the calls, and no secret in any spelling. A form that points an output file outside
``out/`` is refused too, and so is one that sets an option the UI does not show.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from llm_metrics.engine.masking import secret_forms
from mock_llm.testing import MockProcess
from tests.e2e.browser import LocustWeb
from tests.support import run_locust

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

API_KEY = 'sk-Bound-"Key"\\ä-4f9Q2x'
LOADTEST_TOKEN = "lt-Bound-Token-8Hk3Zp"
ADMIN_PASSWORD = "pw-Bound-Admin-7Yc1Rv"
SECRETS = (API_KEY, LOADTEST_TOKEN, ADMIN_PASSWORD)
CONF_PASSWORD = "pw-Of-The-Conf-File-2Zq"  # the gateway conf's auth.password: bound to the start-up target too


class CaptureServer:
    """An HTTP server on 127.0.0.1 (free port) that keeps every byte sent to it and answers 503, or with
    ``redirect_to``, a 307 to that URL plus the path asked."""

    def __init__(self, redirect_to: str = "") -> None:
        self.redirect_to = redirect_to
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.received = bytearray()
        self.requests = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.server.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            with self.lock:
                self.received += head + b"\r\n\r\n" + body
                self.requests += 1
            if self.redirect_to:
                path = head.split(b" ")[1] if b" " in head else b"/"
                location = self.redirect_to.encode() + path
                conn.sendall(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: " + location + b"\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")  # fmt: skip
                return
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        except OSError:
            pass
        finally:
            conn.close()

    def leaks(self, secrets: tuple[str, ...]) -> list[str]:
        with self.lock:
            text = bytes(self.received).decode("utf-8", "replace")
        return sorted({s[:8] for s in secrets for form in secret_forms(s) if form in text})


def suite_setup(suite: str, mock: Any, tmp_path: Path) -> tuple[str, dict[str, str], str]:
    """(locustfile, environment, target option of the form) of a short run of ``suite`` against the mock."""
    env = {"API_KEY": API_KEY, "LOADTEST_TOKEN": LOADTEST_TOKEN}
    if suite == "chat":
        return "chat.py", {**env, "BASE": mock.base_url, "STREAM_RPS": "4", "NONSTREAM_RPS": "4"}, "base"
    if suite == "gateway":
        conf = tmp_path / "gateway.yaml"
        conf.write_text(
            yaml.safe_dump(
                {"wait_time": 0.1, "tasks": {"llm": 2, "health": 1, "admin": 2}, "auth": {"password": CONF_PASSWORD}}
            )
        )
        gw = {"BASE_URL": mock.base_url, "ADMIN_PASSWORD": ADMIN_PASSWORD, "GATEWAY_CONF": str(conf)}
        return "gateway.py", {**env, **gw}, "base_url"
    if suite == "sidecar":
        return "sidecar.py", {**env, "OSIRIS_URL": mock.base_url, "THINK_TIME": "0.1"}, "osiris_url"
    return "workload.py", {**env, "BASE": mock.base_url, "THINK_TIME": "0.1", "TURNS": "1"}, "base"


@pytest.mark.parametrize("suite", ["chat", "gateway", "sidecar", "workload"])
def test_a_target_changed_in_the_web_ui_receives_no_secret(suite: str, tmp_path: Path) -> None:
    capture = CaptureServer()
    try:
        with MockProcess({"ttft_ms": 5, "itl_ms": 1}) as mock:
            locustfile, env, target_option = suite_setup(suite, mock, tmp_path)
            with LocustWeb(locustfile, env, tmp_path) as web:
                form = {"user_count": "2", "spawn_rate": "2", "host": capture.url, target_option: capture.url}
                first = web.post("swarm", form)
                assert not first["success"], first
                assert "will NOT be sent" in first["message"] and "API_KEY" in first["message"], first
                assert capture.requests == 0  # refused: nothing started
                second = web.post("swarm", form)
                assert second["success"], second
                deadline = time.monotonic() + 20
                while capture.requests < 3:
                    assert time.monotonic() < deadline, web.output[-3000:]
                    time.sleep(0.1)
                web.post("stop", {})
                web.quit()
            assert "dropped for this run" in web.output
    finally:
        capture.close()
    assert capture.leaks((*SECRETS, CONF_PASSWORD)) == []
    assert b"authorization: bearer" not in bytes(capture.received).lower()


def test_the_start_form_cannot_choose_where_files_go(tmp_path: Path) -> None:
    env = {"API_KEY": API_KEY, "BASE": "http://127.0.0.1:9", "STREAM_RPS": "1", "NONSTREAM_RPS": "0"}
    with LocustWeb("chat.py", env, tmp_path) as web:
        base = {"user_count": "1", "spawn_rate": "1", "host": "http://127.0.0.1:9"}
        for key, value in (("html_report", str(tmp_path / "report.html")), ("html_report", "out/../../x.html")):
            answer = web.post("swarm", {**base, key: value})
            assert not answer["success"] and f"{key}: {value!r} is outside out/ and conf/" in answer["message"]
        answer = web.post("swarm", {**base, "dataset": "/etc/passwd"})
        assert not answer["success"] and "dataset" in answer["message"], answer
        answer = web.post("swarm", {**base, "secrets_origin": "http://127.0.0.1:9"})
        assert not answer["success"] and "secrets_origin: not settable from the web UI" in answer["message"]
        assert web.get_json("stats/requests")["state"] == "ready"
        web.quit()
    assert not (tmp_path / "report.html").exists()


def test_secrets_entered_again_with_the_new_target_go_to_it_and_only_those(tmp_path: Path) -> None:
    capture = CaptureServer()
    try:
        with MockProcess({"ttft_ms": 5, "itl_ms": 1}) as mock:
            locustfile, env, target_option = suite_setup("chat", mock, tmp_path)
            with LocustWeb(locustfile, env, tmp_path) as web:
                new_key = "sk-typed-for-the-new-target"
                form = {"user_count": "1", "spawn_rate": "1", "host": capture.url, target_option: capture.url}
                answer = web.post("swarm", {**form, "api_key": new_key, "loadtest_token": ""})
                assert answer["success"], answer
                deadline = time.monotonic() + 20
                while capture.requests < 2:
                    assert time.monotonic() < deadline, web.output[-3000:]
                    time.sleep(0.1)
                web.post("stop", {})
                web.quit()
            assert "not sent: LOADTEST_TOKEN" in web.output
    finally:
        capture.close()
    assert b"Bearer " + new_key.encode() in bytes(capture.received)
    assert capture.leaks(SECRETS) == []


@pytest.mark.parametrize("suite", ["chat", "gateway", "sidecar", "workload"])
def test_no_secret_follows_a_redirect_of_its_own_server(suite: str, tmp_path: Path) -> None:
    """The configured target answers every request with a 307 to another server: the calls fail with the
    status, and the other server receives nothing (geventhttpclient would keep X-LoadTest-Token and resend a
    login body to it)."""
    capture = CaptureServer()
    target = CaptureServer(redirect_to=capture.url)
    try:
        locustfile, env, _ = suite_setup(suite, SimpleNamespace(base_url=target.url), tmp_path)
        args = ["-u", "2", "-r", "2", "-t", "2s", "--stop-timeout", "1"]
        if suite == "gateway":  # the gateway runs a load profile (its shape ignores -t): a 2 s one
            stages = tmp_path / "stages.yaml"
            stages.write_text(
                yaml.safe_dump({"profiles": {"flat": {"start_users": 2, "stages": [{"duration": 2, "target": 2}]}}})
            )
            args += ["--load-profile", "flat", "--stages-file", str(stages)]
        run = run_locust(locustfile, args, env, tmp_path, timeout=60)
    finally:
        capture.close()
        target.close()
    assert target.requests > 0, run.output[-3000:]
    assert capture.requests == 0, bytes(capture.received)[:500]
    assert "307" in run.output


URL_USER, URL_PASSWORD = "url-User-3Kd9", "pw-In-The-Url-5Tq8"


def test_credentials_in_the_target_url_stay_out_of_the_web_ui_and_still_go_to_the_target(tmp_path: Path) -> None:
    """``BASE=http://user:password@host``: no page, JSON answer, report, CSV or download name of the web UI holds
    the user or the password; the start form sent back as the page shows it (masked) runs with the
    credentials, which the target receives as Basic authorization."""
    capture = CaptureServer()
    target = capture.url.replace("http://", f"http://{URL_USER}:{URL_PASSWORD}@")
    shown = capture.url.replace("http://", "http://***@")
    try:
        env = {"BASE": target, "STREAM_RPS": "4", "NONSTREAM_RPS": "0"}
        with LocustWeb("chat.py", env, tmp_path) as web:
            pages = {"start page": web.get("")[2]}
            form = {"user_count": "1", "spawn_rate": "1", "host": shown, "base": shown}
            answer = web.post("swarm", form)
            pages["swarm answer"] = json.dumps(answer)
            assert answer["success"], answer
            deadline = time.monotonic() + 20
            while capture.requests < 2:
                assert time.monotonic() < deadline, web.output[-3000:]
                time.sleep(0.1)
            for path in ("", "stats/requests", "stats/report", "stats/requests/csv", "llm/summary.json"):
                pages[path or "start page, running"] = web.get(path)[2]
            with urllib.request.urlopen(web.url + "stats/report?download=1", timeout=10) as resp:
                pages["download name"] = resp.headers.get("Content-Disposition", "")
            web.post("stop", {})
            web.quit()
    finally:
        capture.close()
    assert shown in pages["start page"] and "***@" in pages["download name"], pages["download name"]
    leaks = [(where, s) for where, text in pages.items() for s in (URL_USER, URL_PASSWORD) if s in text]
    assert not leaks, leaks
    basic = base64.b64encode(f"{URL_USER}:{URL_PASSWORD}".encode())
    assert b"Authorization: Basic " + basic in bytes(capture.received), bytes(capture.received)[:600]
