"""Helpers of the browser tests: Locust with its web UI as a subprocess, and Debian's Chromium under Playwright.

Playwright never downloads a browser here: ``launch`` starts ``/usr/bin/chromium`` (``tests/e2e/ensure_chromium.sh``
installs it); tests that need it call ``require_chromium()`` first, which skips the test with the reason when it
or the playwright package is missing (and fails it under ``CI=true``). Screenshots go to ``test-artifacts/``
(gitignored).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support import LOCUSTFILES, ROOT, free_port, locust_env, missing_tool

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    """Skip the calling test (fail it under ``CI=true``), saying why, when Chromium or Playwright is missing."""
    if not CHROMIUM.exists():
        missing_tool(f"{CHROMIUM} is missing: run tests/e2e/ensure_chromium.sh (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing_tool("the playwright package is missing: pip install -e '.[dev]'")


def launch(playwright: Any) -> Any:
    """Debian's Chromium, headless, through Playwright (no browser download)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=20_000)


def start_from_form(page: Any, users: int) -> None:
    """Start the run from Locust's swarm form, as a person does: ``users`` Users, all spawned in the first second."""
    page.fill("input[name=userCount]", str(users))
    page.fill("input[name=spawnRate]", str(users))
    page.get_by_role("button", name="Start").click()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


class LocustWeb:
    """``locust -f locustfiles/<file> --web-host 127.0.0.1 --web-port <free>`` until ``quit()`` (SIGTERM);
    ``base_path`` (e.g. ``/lt``) is passed as ``--web-base-path`` and is part of ``url``."""

    def __init__(
        self,
        locustfile: str,
        env: dict[str, str],
        tmp_path: Path,
        args: tuple[str, ...] = (),
        *,
        base_path: str = "",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{base_path}/"
        if base_path:
            args = (*args, "--web-base-path", base_path)
        self.summary_path = tmp_path / "summary.json"
        self.log_path = tmp_path / "locust-web.log"
        self.cmd = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILES / locustfile),
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(self.port),
            *args,
        ]
        self.env = locust_env({"SUMMARY_JSON": str(self.summary_path), **env})
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> LocustWeb:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            self._wait_until_up(20.0)
        except BaseException:
            self.__exit__(None, None, None)  # __exit__ does not run when __enter__ raises
            raise
        return self

    def _wait_until_up(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"locust exited with {self.proc.returncode}:\n{self.output[-3000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"locust web UI not up after {timeout} s:\n{self.output[-3000:]}")
            time.sleep(0.1)

    def get(self, path: str) -> tuple[int, str, str]:
        """(status, content type, body) of a GET on the web UI."""
        try:
            with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=10) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.headers.get("Content-Type", ""), err.read().decode(errors="replace")

    def get_json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def post(self, path: str, form: dict[str, str]) -> Any:
        data = urllib.parse.urlencode(form).encode()
        with urllib.request.urlopen(self.url + path.lstrip("/"), data=data, timeout=10) as resp:
            return json.loads(resp.read())

    def wait_state(self, state: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            now = self.get_json("stats/requests")["state"]
            if now == state:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"runner state {now!r}, waited {timeout} s for {state!r}:\n{self.output[-3000:]}")
            time.sleep(0.2)

    def quit(self, timeout: float = 20.0) -> int:
        """SIGTERM (Locust quits: the quitting listeners write the summary), then wait for the exit."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        return self.returncode

    def summary(self) -> dict[str, Any]:
        assert self.summary_path.exists(), f"no summary written:\n{self.output[-3000:]}"
        data: dict[str, Any] = json.loads(self.summary_path.read_text())
        return data

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
