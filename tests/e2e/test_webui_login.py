"""The web UI of every suite binds 127.0.0.1 by default, and ``--web-login`` puts it behind a password.

The login is driven in a real headless Chromium: before logging in, the LLM tabs and every suite route send
the browser to the login page; a wrong password is refused with a message; the right one opens the UI, whose
"LLM metrics" tab and ``llm/`` routes then work. Without a browser: the failed attempts per minute are bounded,
and the password is never accepted from the command line.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from mock_llm.testing import MockProcess
from tests.e2e.browser import LocustWeb, artifact, free_port, launch, require_chromium, start_from_form
from tests.support import LOCUSTFILES, ROOT, locust_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

PASSWORD = 'ui-Pass"wörd\\-91'
ROUTES = ["", "stats/requests", "llm/report", "llm/summary.json", "llm/metrics.csv", "tasks", "logs"]


def listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp[6] writes them) with a socket listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            addr, hexport = fields[1].rsplit(":", 1)
            if int(hexport, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(addr)
    return found


@pytest.mark.parametrize("locustfile", ["chat.py", "gateway.py", "sidecar.py", "workload.py"])
def test_the_web_ui_binds_loopback_by_default(locustfile: str, tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / locustfile), "--web-port", str(port)]
    env = locust_env({"SUMMARY_JSON": str(tmp_path / "s.json")})
    assert "LOCUST_WEB_HOST" not in env
    log = tmp_path / "locust.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert listening(port) == {"0100007F"}, (listening(port), log.read_text())  # 127.0.0.1 only
    finally:
        proc.terminate()
        proc.wait(10)
    assert f"Starting web interface at http://127.0.0.1:{port}" in log.read_text()


def test_locust_web_host_in_the_environment_still_wins(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / "chat.py"), "--web-port", str(port)]
    env = locust_env({"SUMMARY_JSON": str(tmp_path / "s.json"), "LOCUST_WEB_HOST": "127.0.0.2"})  # still loopback
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not listening(port):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        assert listening(port) == {"0200007F"}  # 127.0.0.2
    finally:
        proc.terminate()
        proc.wait(10)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def raw(url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, Location) of one request, redirects not followed."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=body), timeout=10) as resp:
            return resp.status, resp.headers.get("Location", "")
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers.get("Location", "")


def test_login_guards_the_tabs_and_routes_and_lets_the_right_password_in(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    env = {"STREAM_RPS": "4", "NONSTREAM_RPS": "0", "MAX_TOKENS": "4", "PROMPTS": "short"}
    env |= {"WEB_LOGIN_PASSWORD": PASSWORD, "WEB_LOGIN_USER": "tester"}
    with (
        MockProcess({"ttft_ms": 5, "itl_ms": 1}) as mock,
        LocustWeb("chat.py", {"BASE": mock.base_url, **env}, tmp_path, ("--web-login",)) as web,
        sync_playwright() as pw,
    ):
        for route in ROUTES:  # no session: every route sends to the login page
            status, location = raw(web.url + route)
            assert status == 302 and "/login" in location, (route, status, location)
        status, location = raw(web.url + "swarm", {"user_count": "1", "spawn_rate": "1", "host": mock.base_url})
        assert status == 302 and "/login" in location
        browser = launch(pw)
        try:
            page = browser.new_page()
            response = page.goto(web.url + "llm/report")
            assert response is not None and response.ok, response
            assert "/login" in page.url and "LLM load test" not in page.content()
            page.fill("input[name=username]", "tester")
            page.fill("input[name=password]", "wrong-password-1")
            page.locator("form button[type=submit]").click()
            page.get_by_text("Invalid user name or password").wait_for(timeout=10_000)
            page.fill("input[name=username]", "tester")
            page.fill("input[name=password]", PASSWORD)
            page.locator("form button[type=submit]").click()
            page.locator("input[name=userCount]").wait_for(timeout=15_000)  # the start form: logged in
            start_from_form(page, 2)
            page.get_by_role("tab", name="LLM metrics").wait_for(timeout=15_000)
            page.screenshot(path=str(artifact("webui-after-login.png")))
            page.get_by_role("tab", name="LLM metrics").click()
            page.get_by_text("TTFT ms").first.wait_for(timeout=15_000)  # live rows of the run started above
            page.get_by_role("tab", name="LLM thresholds").click()
            page.get_by_text("Result so far").first.wait_for(timeout=10_000)
            for route in ROUTES[2:5]:
                answer = page.request.get(web.url + route)
                assert answer.ok and "/login" not in answer.url, (route, answer.status, answer.url)
            assert "LLM load test" in page.request.get(web.url + "llm/report").text()
        finally:
            browser.close()
        web.quit()
    assert PASSWORD not in web.output


def test_failed_logins_are_bounded_per_minute(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n", encoding="utf-8")  # a mounted secret file: trailing newline removed
    with LocustWeb("chat.py", {"WEB_LOGIN_PASSWORD_FILE": str(pw)}, tmp_path, ("--web-login",)) as web:
        submit = web.url + "llm/login_submit"
        right = {"username": "locust", "password": PASSWORD}
        assert raw(submit, right) == (302, "/")  # logged in: to the index
        for _ in range(10):
            assert raw(submit, {**right, "password": PASSWORD + "x"}) == (302, "/login")
        assert raw(submit, right) == (302, "/login")  # the 11th attempt in the minute: refused, even right
        web.quit()
    assert "too many failed attempts" in web.output and PASSWORD not in web.output


def test_a_login_without_a_password_stops_at_start_up(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / "chat.py"), "--web-login"]
    cmd += ["--web-port", str(free_port())]
    env = locust_env({"SUMMARY_JSON": str(tmp_path / "s.json")})
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--web-login: set the password in WEB_LOGIN_PASSWORD" in proc.stderr
    cmd += ["--web-login-password", "on-the-command-line"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0 and "unrecognized arguments: --web-login-password" in proc.stderr
