"""Start and stop the mock: bind, announce (stdout line and port file), serve, shut down gracefully.

On SIGTERM or SIGINT the listening socket closes at once, idle keep-alive connections are closed, open
responses get ``shutdown_grace_s`` to finish, and what is left is then aborted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from mock_llm import api_control, api_gateway, api_more, api_openai, api_sidecar
from mock_llm.app import MockApp
from mock_llm.config import Config
from mock_llm.protocol import Connection


def build_app(cfg: Config) -> MockApp:
    """The application with every route."""
    app = MockApp(cfg)
    for module in (api_openai, api_more, api_gateway, api_sidecar, api_control):
        app.add_routes(module.ROUTES)
    return app


def url_host(host: str) -> str:
    """The host part of a URL that reaches a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class MockServer:
    """The listening server of one MockApp, on the running event loop."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.app = build_app(cfg)
        self.connections: set[Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self.port = cfg.port

    @property
    def base_url(self) -> str:
        return f"http://{url_host(self.cfg.host)}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        app, connections = self.app, self.connections
        self._server = await loop.create_server(
            lambda: Connection(app, connections, loop),
            self.cfg.host,
            self.cfg.port,
            reuse_address=True,
            backlog=4096,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop listening, let open responses finish within the grace time, then abort the rest."""
        grace = self.app.cfg.shutdown_grace_s if grace_s is None else grace_s
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.shutdown()
        deadline = time.monotonic() + grace
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            conn.abort()
        await asyncio.sleep(0)  # let connection_lost callbacks cancel their tasks
        if self._server is not None:
            await self._server.wait_closed()
        self.app.clock.close()


def write_port_file(path: str, port: int) -> None:
    """Write the port atomically (readers never see a partial file)."""
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n", encoding="ascii")
    tmp.replace(path)


def control_token_from_env() -> str:
    """``MOCK_CONTROL_TOKEN``, else the content of the file named by ``MOCK_CONTROL_TOKEN_FILE``, else ""."""
    token = os.environ.get("MOCK_CONTROL_TOKEN", "")
    path = os.environ.get("MOCK_CONTROL_TOKEN_FILE", "")
    if not token and path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except FileNotFoundError:  # an optional Kubernetes Secret that does not exist: loopback clients only
            print(f"mock_llm: MOCK_CONTROL_TOKEN_FILE={path}: no such file", file=sys.stderr, flush=True)
    return token


def is_loopback_host(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


async def serve(cfg: Config, port_file: str | None = None, control_token: str = "") -> None:
    """Serve until SIGTERM or SIGINT."""
    server = MockServer(cfg)
    server.app.control_token = control_token
    if not control_token and not is_loopback_host(cfg.host):
        print(
            f"mock_llm: bound to {cfg.host} without MOCK_CONTROL_TOKEN: the control endpoints (/mock/...) answer "
            "clients on this machine only",
            file=sys.stderr,
            flush=True,
        )
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if port_file:
        write_port_file(port_file, server.port)
    print(f"mock_llm listening on {server.base_url}", flush=True)
    await stop.wait()
    print("mock_llm shutting down", file=sys.stderr, flush=True)
    await server.stop()


def run(cfg: Config, port_file: str | None = None) -> None:
    """Run the server in this process on uvloop (the standard loop when uvloop is missing)."""
    token = control_token_from_env()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(serve(cfg, port_file, token))
    else:
        uvloop.run(serve(cfg, port_file, token))
