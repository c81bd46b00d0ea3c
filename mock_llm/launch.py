"""Start the mock from Python: as a subprocess (``MockProcess``) or in a thread of this process
(``serve_in_thread``), both on a free port of 127.0.0.1, both with a small urllib-only control client.
``python -m mock_llm.with_mock``, ``deploy/run_distributed.py``, the benchmarks and the tests start it this way.

    with MockProcess({"ttft_ms": 200, "itl_ms": 20}) as mock:
        mock.post_json("/v1/chat/completions", {...})
        assert mock.stats()["requests"]["POST /v1/chat/completions"] == 1
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from mock_llm.config import Config, apply


class ControlClient:
    """urllib calls to a running mock at ``base_url``; ``/mock/...`` calls carry ``control_token`` when set."""

    base_url: str
    control_token: str = ""

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; (status, lower-case headers, body) for every status, errors included."""
        data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        if self.control_token and path.startswith("/mock/"):
            hdrs["X-Mock-Control-Token"] = self.control_token
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    def get_json(self, path: str, headers: Mapping[str, str] | None = None) -> Any:
        return self._json("GET", path, None, headers)

    def post_json(self, path: str, body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        return self._json("POST", path, {} if body is None else body, headers)

    def _json(self, method: str, path: str, body: Any, headers: Mapping[str, str] | None) -> Any:
        status, _, data = self.request(method, path, body, headers)
        if status >= 400:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:500]!r}")
        return json.loads(data)

    def stats(self) -> dict[str, Any]:
        """``GET /mock/stats``."""
        result: dict[str, Any] = self.get_json("/mock/stats")
        return result

    def reset(self) -> None:
        """``POST /mock/reset``: zero the counters, usage and budgets."""
        self.post_json("/mock/reset")

    def configure(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /mock/config``: merge settings into the running config; returns the new config."""
        status, _, data = self.request("POST", "/mock/config", dict(settings))
        if status != 200:
            raise ValueError(json.loads(data)["error"]["message"])
        result: dict[str, Any] = json.loads(data)
        return result

    def revoke(self, access_tokens: bool = True, refresh_tokens: bool = True) -> dict[str, int]:
        """``POST /mock/revoke``: revoke every issued token of the chosen kinds."""
        result: dict[str, int] = self.post_json(
            "/mock/revoke", {"access_tokens": access_tokens, "refresh_tokens": refresh_tokens}
        )
        return result


class MockProcess(ControlClient):
    """``python -m mock_llm`` on a free port, as a context manager.

    ``overrides`` (settings as plain data) are written to a temporary YAML file given after
    ``config_file``; ``args`` are extra command-line flags. The process is killed on exit.
    """

    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        config_file: str | Path | None = None,
        *,
        args: list[str] | tuple[str, ...] = (),
        startup_timeout: float = 15.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.config_file = config_file
        self.args = list(args)
        self.startup_timeout = startup_timeout
        self.env = env
        self.control_token = (os.environ if env is None else env).get("MOCK_CONTROL_TOKEN", "")
        self.port = 0
        self.base_url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def output(self) -> str:
        """What the process wrote to stdout and stderr so far."""
        if self._tmp is None:
            return ""
        return "".join(
            (Path(self._tmp.name) / name).read_text(errors="replace")
            for name in ("stdout", "stderr")
            if (Path(self._tmp.name) / name).exists()
        )

    def start(self) -> MockProcess:
        self._tmp = tempfile.TemporaryDirectory(prefix="mock_llm-")
        tmp = Path(self._tmp.name)
        port_file = tmp / "port"
        cmd = [sys.executable, "-m", "mock_llm", "--port", "0", "--port-file", str(port_file)]
        if self.config_file is not None:
            cmd += ["--config", str(self.config_file)]
        if self.overrides:
            (tmp / "overrides.yaml").write_text(yaml.safe_dump(self.overrides), encoding="utf-8")
            cmd += ["--config", str(tmp / "overrides.yaml")]
        cmd += self.args
        env = dict(os.environ if self.env is None else self.env)
        src = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = src + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else src
        with open(tmp / "stdout", "wb") as out, open(tmp / "stderr", "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if port_file.exists():
                text = port_file.read_text().strip()
                if text:
                    self.port = int(text)
                    break
            if self.proc.poll() is not None:
                output = self.output
                self.stop()
                raise RuntimeError(f"mock_llm exited with status {self.proc.returncode}:\n{output}")
            if time.monotonic() > deadline:
                output = self.output
                self.stop()
                raise TimeoutError(f"mock_llm not ready after {self.startup_timeout} s:\n{output}")
            time.sleep(0.02)
        self.base_url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """Terminate (SIGTERM, then SIGKILL after ``timeout``); returns the exit status."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            code = self.proc.returncode
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return code

    def __enter__(self) -> MockProcess:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class ThreadHandle(ControlClient):
    """A mock served by an event loop in a daemon thread of this process; ``stop()`` ends it."""

    def __init__(self, cfg: Config, port: int = 0, startup_timeout: float = 10.0) -> None:
        from mock_llm.server import MockServer

        self.cfg = cfg
        self._server = MockServer(apply(cfg, {"port": port}, "serve_in_thread"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mock_llm", daemon=True)
        self._thread.start()
        if not self._ready.wait(startup_timeout):
            raise TimeoutError("mock_llm thread not ready")
        if self._error is not None:
            raise self._error
        self.port = self._server.port
        self.base_url = self._server.base_url

    @property
    def connections(self) -> set[Any]:
        """The open server-side connections (white-box tests; touch only when idle)."""
        return self._server.connections

    @property
    def app(self) -> Any:
        """The MockApp (its ``stats``, ``gateway``...), for white-box tests; touch it only when idle."""
        return self._server.app

    def _run(self) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover
            loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._server.start())
        except BaseException as err:
            self._error = err
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop serving (open responses get ``grace_s``) and join the thread."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self._server.stop(grace_s), loop)
        try:
            fut.result(grace_s + 10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)

    def __enter__(self) -> ThreadHandle:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def serve_in_thread(config: Config | Mapping[str, Any] | None = None, *, port: int = 0) -> ThreadHandle:
    """Run the mock in a thread of this process on ``port`` (0 = a free one, whatever ``config`` says).

    ``config`` is a Config or plain-data overrides of the defaults (validated: ConfigError when bad).
    """
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            raise RuntimeError(
                "serve_in_thread cannot run in a process where gevent patched threading (Locust was imported): "
                "use MockProcess, which runs the mock in its own process"
            )
    cfg = config if isinstance(config, Config) else apply(Config(), config or {}, "serve_in_thread")
    return ThreadHandle(cfg, port)
