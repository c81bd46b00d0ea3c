"""Gateway state: API keys with token-bucket rate limits and token budgets, login and refresh tokens.

Pure bookkeeping on a caller-given monotonic clock (seconds); no I/O, so it is unit-testable without
sockets. An LLM call without Authorization is anonymous (unlimited) unless ``require_api_key``; an
Authorization header with a key that is not configured is always refused.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from mock_llm.config import ApiKey, GatewayConfig

ANONYMOUS = "anonymous"


class TokenBucket:
    """``rate`` requests per second with bursts of up to ``burst``; rate 0 = unlimited."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst if burst > 0 else max(1.0, rate)
        self.tokens = self.burst
        self.last = now

    def take(self, now: float) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass
class KeyUsage:
    """What one key (or the anonymous caller) has used."""

    requests: int = 0
    completion_tokens: int = 0
    rate_limited: int = 0
    budget_exceeded: int = 0


@dataclass
class AuthResult:
    """Outcome of the API-key check: ``key`` when accepted, else an error type and message."""

    key: str | None
    error: str = ""
    message: str = ""


@dataclass
class _Token:
    expires: float
    revoked: bool = False


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: float


@dataclass
class Gateway:
    """API keys, their limits and usage, and the issued login tokens."""

    cfg: GatewayConfig
    now: float
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    usage: dict[str, KeyUsage] = field(default_factory=dict)
    access_tokens: dict[str, _Token] = field(default_factory=dict)
    refresh_tokens: dict[str, _Token] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.configure(self.cfg, self.now)

    # --- configuration -------------------------------------------------------------------------------

    def configure(self, cfg: GatewayConfig, now: float) -> None:
        """Apply new settings; usage is kept, buckets of keys whose limits changed are refilled."""
        old = self.cfg.api_keys
        self.cfg = cfg
        for key, limits in cfg.api_keys.items():
            if key not in self.buckets or old.get(key) != limits:
                self.buckets[key] = TokenBucket(limits.rate_limit_rps, limits.burst, now)
        for key in list(self.buckets):
            if key not in cfg.api_keys:
                del self.buckets[key]

    def reset(self, now: float) -> None:
        """Forget usage and refill every bucket (budgets start over)."""
        self.usage.clear()
        self.buckets.clear()
        self.configure(self.cfg, now)

    # --- API keys -------------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> AuthResult:
        """Check an ``Authorization`` header value of an LLM call."""
        if authorization is None or not authorization.strip():
            if self.cfg.require_api_key:
                return AuthResult(None, "missing_api_key", "an API key is required (Authorization: Bearer KEY)")
            return AuthResult(ANONYMOUS)
        scheme, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return AuthResult(None, "invalid_api_key", "expected Authorization: Bearer KEY")
        if key not in self.cfg.api_keys:
            return AuthResult(None, "invalid_api_key", "unknown API key")
        return AuthResult(key)

    def _usage(self, key: str) -> KeyUsage:
        usage = self.usage.get(key)
        if usage is None:
            usage = self.usage[key] = KeyUsage()
        return usage

    def admit(self, key: str, now: float) -> tuple[str, float]:
        """Rate limit then budget of one call: ("", 0) when allowed, ("rate_limited", retry_after_s)
        or ("budget_exceeded", 0)."""
        usage = self._usage(key)
        usage.requests += 1
        limits = self.cfg.api_keys.get(key)
        if limits is None:
            return "", 0.0
        wait = self.buckets[key].take(now)
        if wait > 0:
            usage.rate_limited += 1
            return "rate_limited", wait
        if limits.token_budget and usage.completion_tokens >= limits.token_budget:
            usage.budget_exceeded += 1
            return "budget_exceeded", 0.0
        return "", 0.0

    def add_tokens(self, key: str, tokens: int) -> None:
        self._usage(key).completion_tokens += tokens

    def budget_remaining(self, key: str) -> int | None:
        limits: ApiKey | None = self.cfg.api_keys.get(key)
        if limits is None or not limits.token_budget:
            return None
        return max(0, limits.token_budget - self._usage(key).completion_tokens)

    # --- login tokens ---------------------------------------------------------------------------------

    def _issue(self, now: float) -> TokenPair:
        if len(self.access_tokens) + len(self.refresh_tokens) > 100_000:
            self._prune(now)
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = _Token(now + self.cfg.access_token_ttl_s)
        self.refresh_tokens[refresh] = _Token(now + self.cfg.refresh_token_ttl_s)
        return TokenPair(access, refresh, self.cfg.access_token_ttl_s)

    def _prune(self, now: float) -> None:
        for tokens in (self.access_tokens, self.refresh_tokens):
            for tok in [t for t, v in tokens.items() if v.expires <= now]:
                del tokens[tok]

    def login(self, username: Any, password: Any, now: float) -> TokenPair | None:
        expected = self.cfg.users.get(username) if isinstance(username, str) else None
        if (
            expected is None
            or not isinstance(password, str)
            or not secrets.compare_digest(expected.encode("utf-8"), password.encode("utf-8"))  # non-ASCII too
        ):
            return None
        return self._issue(now)

    @staticmethod
    def _check(tokens: dict[str, _Token], token: str, now: float) -> str:
        """Empty when valid, else the error type."""
        entry = tokens.get(token)
        if entry is None:
            return "invalid_token"
        if entry.revoked:
            return "token_revoked"
        if entry.expires <= now:
            return "token_expired"
        return ""

    def refresh(self, token: Any, now: float) -> tuple[TokenPair | None, str]:
        """A new pair for a valid refresh token, which is used up; else (None, error type)."""
        if not isinstance(token, str):
            return None, "invalid_token"
        error = self._check(self.refresh_tokens, token, now)
        if error:
            return None, error
        del self.refresh_tokens[token]
        return self._issue(now), ""

    def check_access(self, authorization: str | None, now: float) -> str:
        """Empty when the header carries a valid access token, else the error type."""
        if not authorization:
            return "missing_token"
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return "invalid_token"
        return self._check(self.access_tokens, token.strip(), now)

    def revoke(self, access: bool, refresh: bool) -> tuple[int, int]:
        """Revoke every issued token of the chosen kinds; returns how many were live."""
        counts = []
        for chosen, tokens in ((access, self.access_tokens), (refresh, self.refresh_tokens)):
            n = 0
            if chosen:
                for entry in tokens.values():
                    if not entry.revoked:
                        entry.revoked = True
                        n += 1
            counts.append(n)
        return counts[0], counts[1]

    # --- reports --------------------------------------------------------------------------------------

    def usage_report(self, mask: bool) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, usage in self.usage.items():
            name = mask_key(key) if mask and key != ANONYMOUS else key
            out[name] = {
                "requests": usage.requests,
                "completion_tokens": usage.completion_tokens,
                "rate_limited": usage.rate_limited,
                "budget_exceeded": usage.budget_exceeded,
                "budget_remaining": self.budget_remaining(key),
            }
        return out


def mask_key(key: str) -> str:
    """``sk-test-123456`` -> ``sk-...3456``: enough to tell keys apart in an admin page."""
    if len(key) <= 8:
        return key[:2] + "..."
    return key[:3] + "..." + key[-4:]


def retry_after_header(wait_s: float) -> int:
    """Whole seconds for ``Retry-After`` (at least 1)."""
    return max(1, math.ceil(wait_s))
