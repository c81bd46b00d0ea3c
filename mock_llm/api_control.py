"""Test-control endpoints (``/mock/...``): counters, reset, run-time config, token revocation.

They are never counted in the stats and never get faults.
"""

from __future__ import annotations

from mock_llm.app import Handler, MockApp
from mock_llm.config import ConfigError, apply, to_dict
from mock_llm.protocol import Connection, Request


def stats(app: MockApp, req: Request, conn: Connection) -> None:
    app.reply_json(req, conn, 200, app.snapshot())


def reset(app: MockApp, req: Request, conn: Connection) -> None:
    app.reset()
    app.reply_json(req, conn, 200, {"reset": True})


def get_config(app: MockApp, req: Request, conn: Connection) -> None:
    app.reply_json(req, conn, 200, to_dict(app.cfg))


def set_config(app: MockApp, req: Request, conn: Connection) -> None:
    body = app.json_body(req, conn)
    if body is None:
        return
    try:
        cfg = apply(app.cfg, body, "POST /mock/config", runtime=True)
    except ConfigError as err:
        app.error(req, conn, 400, str(err), "invalid_config", "invalid_config")
        return
    app.configure(cfg)
    app.reply_json(req, conn, 200, to_dict(cfg))


def revoke(app: MockApp, req: Request, conn: Connection) -> None:
    body = app.json_body(req, conn, required=False)
    if body is None:
        return
    access, refresh = body.get("access_tokens", True), body.get("refresh_tokens", True)
    if not isinstance(access, bool) or not isinstance(refresh, bool):
        app.error(req, conn, 400, "access_tokens, refresh_tokens: expected booleans", "invalid_request_error")
        return
    n_access, n_refresh = app.gateway.revoke(access, refresh)
    app.reply_json(req, conn, 200, {"revoked_access_tokens": n_access, "revoked_refresh_tokens": n_refresh})


_ENDPOINTS: list[tuple[str, str, Handler]] = [
    ("GET", "/mock/stats", stats),
    ("POST", "/mock/reset", reset),
    ("GET", "/mock/config", get_config),
    ("POST", "/mock/config", set_config),
    ("POST", "/mock/revoke", revoke),
]
ROUTES: list[tuple[str, str, Handler, str]] = [(method, path, h, "control") for method, path, h in _ENDPOINTS]
