"""A password login for Locust's web UI, through Locust's own ``--web-login`` mechanism.

With ``--web-login``, Locust 2.47 protects every route of its UI (and the suite's ``llm/`` routes, which use
``auth_required_if_enabled``) with Flask-Login and shows its login page, but ships no way to check a password:
the locustfile must give a user loader and a form callback. ``install_login`` gives both:

* one user (``--web-login-user``, default ``locust``) and its password, read by the caller from
  ``WEB_LOGIN_PASSWORD`` or the file named by ``WEB_LOGIN_PASSWORD_FILE``, never from the command line (where
  ``ps`` and shell histories show it);
* the user name and password compared in constant time (``hmac.compare_digest`` on their SHA-256 digests, so
  the time does not depend on the length either);
* at most ``max_failures`` failed attempts per minute, for all clients together: past that, every attempt is
  refused (even a right one) until the minute is over, so guessing costs at least a minute per batch.

The session cookie is signed with a random key made at start-up: restarting Locust logs everyone out.
Nothing happens at import: Flask is imported by ``install_login``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MAX_FAILURES_PER_MINUTE = 10
LOGIN_SUBMIT = "/llm/login_submit"


class FailureLimit:
    """At most ``limit`` failures in any ``window_s`` seconds (pure: the clock is a parameter)."""

    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.failures: deque[float] = deque()

    def _trim(self) -> None:
        now = self.clock()
        while self.failures and now - self.failures[0] >= self.window_s:
            self.failures.popleft()

    def blocked(self) -> bool:
        self._trim()
        return len(self.failures) >= self.limit

    def fail(self) -> None:
        self._trim()
        self.failures.append(self.clock())

    def retry_after_s(self) -> float:
        self._trim()
        return max(0.0, self.window_s - (self.clock() - self.failures[0])) if self.failures else 0.0


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def credentials_match(user: str, password: str, want_user: str, want_password: str) -> bool:
    """True when both match; constant time (both compared, on digests of equal length)."""
    user_ok = hmac.compare_digest(_digest(user), _digest(want_user))
    password_ok = hmac.compare_digest(_digest(password), _digest(want_password))
    return user_ok & password_ok


def install_login(
    web_ui: Any,
    username: str,
    password: str,
    *,
    base_path: str = "",
    max_failures: int = MAX_FAILURES_PER_MINUTE,
) -> FailureLimit:
    """Make ``--web-login`` check ``username``/``password``; returns the failure limit (for tests)."""
    from flask import Blueprint, redirect, request, session, url_for
    from flask_login import UserMixin, login_user

    class _User(UserMixin):
        def __init__(self, user_id: str) -> None:
            self.id = user_id

    app = web_ui.app
    if not app.secret_key:
        app.secret_key = secrets.token_bytes(32)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    limit = FailureLimit(max_failures)
    web_ui.login_manager.user_loader(lambda user_id: _User(user_id) if user_id == username else None)
    web_ui.auth_args = {"username_password_callback": (base_path or "") + LOGIN_SUBMIT}

    bp = Blueprint("llm_login", __name__, url_prefix=base_path or None)

    @bp.route(LOGIN_SUBMIT, methods=["POST"])
    def login_submit() -> Any:
        if limit.blocked():
            wait = int(limit.retry_after_s()) + 1
            log.warning("web UI login refused: too many failed attempts (retry in %d s)", wait)
            session["auth_error"] = f"Too many failed attempts: try again in {wait} s"
            return redirect(url_for("locust.login"))
        user = str(request.form.get("username", ""))
        given = str(request.form.get("password", ""))
        if credentials_match(user, given, username, password):
            login_user(_User(username))
            return redirect(url_for("locust.index"))
        limit.fail()
        log.warning("web UI login failed from %s", request.remote_addr)
        session["auth_error"] = "Invalid user name or password"
        return redirect(url_for("locust.login"))

    app.register_blueprint(bp)
    return limit


__all__ = ["LOGIN_SUBMIT", "MAX_FAILURES_PER_MINUTE", "FailureLimit", "credentials_match", "install_login"]
