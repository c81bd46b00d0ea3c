"""Gateway endpoints: ``GET /health``, login and refresh, and the admin API behind an access token."""

from __future__ import annotations

import time

from mock_llm.app import Handler, MockApp
from mock_llm.gateway import TokenPair, mask_key
from mock_llm.protocol import Connection, Request

_HEALTH = b'{"status":"ok"}'
_BEARER = b'www-authenticate: Bearer realm="mock_llm"\r\n'
_MESSAGES = {
    "invalid_credentials": "wrong username or password",
    "invalid_token": "invalid token",
    "token_expired": "token expired",
    "token_revoked": "token revoked",
    "missing_token": "an access token is required (Authorization: Bearer TOKEN)",
}


def health(app: MockApp, req: Request, conn: Connection) -> None:
    app.reply(req, conn, 200, _HEALTH)


def _pair(app: MockApp, req: Request, conn: Connection, pair: TokenPair) -> None:
    app.reply_json(
        req,
        conn,
        200,
        {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": "bearer",
            "expires_in": pair.expires_in,
        },
    )


def _unauthorized(app: MockApp, req: Request, conn: Connection, error: str) -> None:
    app.error(req, conn, 401, _MESSAGES.get(error, error), error, error, _BEARER)


def login(app: MockApp, req: Request, conn: Connection) -> None:
    body = app.json_body(req, conn)
    if body is None:
        return
    pair = app.gateway.login(body.get("username"), body.get("password"), time.monotonic())
    if pair is None:
        _unauthorized(app, req, conn, "invalid_credentials")
    else:
        _pair(app, req, conn, pair)


def refresh(app: MockApp, req: Request, conn: Connection) -> None:
    body = app.json_body(req, conn)
    if body is None:
        return
    pair, error = app.gateway.refresh(body.get("refresh_token"), time.monotonic())
    if pair is None:
        _unauthorized(app, req, conn, error)
    else:
        _pair(app, req, conn, pair)


def _admin_ok(app: MockApp, req: Request, conn: Connection) -> bool:
    error = app.gateway.check_access(req.header(b"authorization"), time.monotonic())
    if error:
        _unauthorized(app, req, conn, error)
        return False
    return True


def dashboard(app: MockApp, req: Request, conn: Connection) -> None:
    if not _admin_ok(app, req, conn):
        return
    stats = app.stats
    app.reply_json(
        req,
        conn,
        200,
        {
            "uptime_s": round(time.time() - app.started, 3),
            "requests": sum(stats.requests.values()),
            "tokens_served": stats.tokens_served,
            "rate_limited": stats.rate_limited,
            "budget_exceeded": stats.budget_exceeded,
            "active": app.admission.active,
            "queued": app.admission.queued,
            "models": app.cfg.models,
            "api_keys": len(app.cfg.gateway.api_keys),
        },
    )


def usage(app: MockApp, req: Request, conn: Connection) -> None:
    if _admin_ok(app, req, conn):
        app.reply_json(req, conn, 200, {"usage": app.gateway.usage_report(mask=True)})


def keys(app: MockApp, req: Request, conn: Connection) -> None:
    if not _admin_ok(app, req, conn):
        return
    listed = [
        {
            "key": mask_key(key),
            "rate_limit_rps": limits.rate_limit_rps,
            "burst": limits.burst,
            "token_budget": limits.token_budget,
            "budget_remaining": app.gateway.budget_remaining(key),
        }
        for key, limits in app.cfg.gateway.api_keys.items()
    ]
    app.reply_json(req, conn, 200, {"keys": listed})


ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", "/health", health, "plain"),
    ("POST", "/auth/login", login, "plain"),
    ("POST", "/auth/refresh", refresh, "plain"),
    ("GET", "/admin/dashboard", dashboard, "plain"),
    ("GET", "/admin/usage", usage, "plain"),
    ("GET", "/admin/keys", keys, "plain"),
]
