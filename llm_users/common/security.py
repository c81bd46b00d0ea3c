"""Locust glue of the suite's security rules; ``install_security(events)`` is called by every suite's install.

* **Loopback by default**: the web UI binds 127.0.0.1 unless ``--web-host`` (``LOCUST_WEB_HOST``, or
  ``web-host`` in a config file) says otherwise (``*`` or ``0.0.0.0``: every interface).
* **Login**: with Locust's ``--web-login``, a password login (``llm_metrics.outputs.weblogin``); the password comes from
  ``WEB_LOGIN_PASSWORD`` or the file named by ``WEB_LOGIN_PASSWORD_FILE``, never from the command line.
* **Secrets bound to their target** (``common.target_binding``): at start-up ``--secrets-origin`` is set to the
  origin of the configured target. A start form of the web UI that changes the target (``host``, ``base``,
  ``base_url``, ``osiris_url``) to another origin is refused once with a message naming the secrets that will
  not be sent there; sent again, the run starts without them, unless they were entered again in that form
  (then they are bound to the new origin). Going back to the start-up origin brings the start-up secrets back.
* **Paths are not the UI's**: a start form that sets a file option (``PATH_OPTIONS``) to a path outside the
  working directory's ``out/`` and ``conf/`` is refused with a message; so is a form that sets an option the UI
  does not show (``--secrets-origin``, ``--pushgateway``, ...).
* **Short secrets are refused** at start-up (exit 2) unless ``--allow-short-secrets``.
* **Secrets on workers** (``--secrets-on-workers``): the master drops every secret it was given and refuses
  secrets typed in the web UI, so it forwards none to its workers; each worker uses the secrets of its own
  environment (or ``*_FILE``), bound to the origin of its own configured target.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_metrics.engine.masking import MIN_SECRET_LENGTH, short_secrets
from llm_metrics.state import state as suite_state
from llm_users.common.options import DEFAULT_TARGET, as_bool
from llm_users.common.target_binding import (
    TARGET_OPTIONS,
    LocalSecrets,
    effective_target,
    origin,
    set_local_secrets,
)

log = logging.getLogger(__name__)

DEFAULT_WEB_HOST = "127.0.0.1"
SECRET_OPTIONS = ("api_key", "loadtest_token", "admin_password")
"""The secret options of the suites (those a run sends to its target)."""
PATH_OPTIONS = (
    "html_report",
    "summary_json",
    "thresholds",
    "dataset",
    "trace",
    "prompts_file",
    "gateway_conf",
    "sidecar_conf",
    "trade_prompts",
    "stages_file",
    "capacity_conf",
)
"""File options a web UI form may only point into ``out/`` or ``conf/`` of the working directory."""
ALLOWED_DIRS = ("out", "conf")
LOCUST_FORM_KEYS = frozenset({"user_count", "spawn_rate", "host", "run_time", "profile", "user_classes", "shape_class"})
"""What Locust's own start form sends, besides the options it shows."""
WEB_LOGIN_PASSWORD_ENV = "WEB_LOGIN_PASSWORD"


def read_secret_env(name: str) -> str:
    """``$NAME``, else the content of the file named by ``$NAME_FILE`` (trailing newline removed), else "".
    A missing file is a warning (an optional Secret without that key); a ``_FILE`` that cannot be read ends the
    process with status 2, naming the variable."""
    value = os.environ.get(name, "")
    if value:
        return value
    path = os.environ.get(name + "_FILE", "")
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:  # an optional Kubernetes Secret without that key: no file, no secret
        log.warning("%s_FILE=%s: no such file; %s is not set", name, path, name)
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        log.error("%s_FILE=%s: cannot read the secret: %s", name, path, exc)
        sys.exit(2)


def confined(value: str, cwd: Path) -> bool:
    """True when ``value`` (relative to ``cwd``) resolves, symlinks followed, inside ``cwd/out`` or ``cwd/conf``."""
    try:
        resolved = (cwd / value).resolve()
    except (OSError, RuntimeError, ValueError):
        return False
    for d in ALLOWED_DIRS:
        try:
            resolved.relative_to((cwd / d).resolve())
            return True
        except ValueError:
            continue
    return False


@dataclass
class SecurityState:
    """Per-environment state: the start-up secrets and origin, and a target change waiting to be confirmed."""

    startup_secrets: dict[str, str]
    startup_origin: str
    secrets_on_workers: bool
    pending_origin: str = ""


def add_security_arguments(parser: Any) -> None:
    if any(getattr(a, "dest", None) == "secrets_origin" for a in parser._actions):
        return  # two suites in one process
    parser.set_defaults(web_host=DEFAULT_WEB_HOST)
    parser.add_argument(
        "--secrets-origin",
        default="",
        include_in_web_ui=False,
        help="scheme://host:port the secrets are bound to; set by the suite at start-up (default: the target's)",
    )
    parser.add_argument(
        "--secrets-startup-origin",
        default="",
        include_in_web_ui=False,
        help="scheme://host:port of the target at start-up: the secrets of conf files stay bound to it",
    )
    parser.add_argument(
        "--secrets-on-workers",
        env_var="SECRETS_ON_WORKERS",
        default="false",
        include_in_web_ui=False,
        help="true: the master holds and forwards no secret; each worker reads its own (env API_KEY, ... or "
        "API_KEY_FILE, ...) (env SECRETS_ON_WORKERS)",
    )
    parser.add_argument(
        "--allow-short-secrets",
        env_var="ALLOW_SHORT_SECRETS",
        default="false",
        include_in_web_ui=False,
        help=f"true: accept secrets shorter than {MIN_SECRET_LENGTH} characters (refused by default: they "
        "cannot be masked safely) (env ALLOW_SHORT_SECRETS)",
    )
    parser.add_argument(
        "--web-login-user",
        env_var="WEB_LOGIN_USER",
        default="locust",
        include_in_web_ui=False,
        help="User name of --web-login; the password: env WEB_LOGIN_PASSWORD or WEB_LOGIN_PASSWORD_FILE",
    )


def add_extra_secret(environment: Any, value: str) -> None:
    """Have the outputs mask ``value`` too (``LLMMetrics.secrets`` reads ``SuiteState.extra_secrets``)."""
    found = suite_state(environment).extra_secrets
    if value and value not in found:
        found.append(value)


def _refuse_short(names: str) -> None:
    _exit(
        f"{names}: secrets shorter than {MIN_SECRET_LENGTH} characters are refused (they cannot be masked in "
        "the outputs safely); use a longer one, or --allow-short-secrets/ALLOW_SHORT_SECRETS=true"
    )


def refuse_short_secret(opts: Any, name: str, value: str) -> None:
    """End the process (status 2) when ``value`` is a short secret and ``--allow-short-secrets`` is not given."""
    if short_secrets({name: value}) and not as_bool(getattr(opts, "allow_short_secrets", False), "ALLOW_SHORT_SECRETS"):
        _refuse_short(name)


def _secret_values(opts: Any) -> dict[str, str]:
    return {k: str(getattr(opts, k, "") or "") for k in SECRET_OPTIONS if hasattr(opts, k)}


def _exit(message: str) -> None:
    log.error("%s", message)
    sys.exit(2)


def on_init(environment: Any) -> None:
    """Start-up checks and bindings (every process); the web UI guard and login (where the UI runs)."""
    from locust.runners import MasterRunner, WorkerRunner

    opts = environment.parsed_options
    if opts is None or suite_state(environment).runtime("security") is not None:
        return
    for k in SECRET_OPTIONS:  # *_FILE: a secret mounted as a file (Kubernetes, Docker secrets)
        if hasattr(opts, k) and not getattr(opts, k):
            setattr(opts, k, read_secret_env(k.upper()))
    login_password = read_secret_env(WEB_LOGIN_PASSWORD_ENV) if getattr(opts, "web_login", False) else ""
    try:
        on_workers = as_bool(getattr(opts, "secrets_on_workers", False), "--secrets-on-workers/SECRETS_ON_WORKERS")
        allow_short = as_bool(getattr(opts, "allow_short_secrets", False), "--allow-short-secrets/ALLOW_SHORT_SECRETS")
    except ValueError as exc:
        _exit(str(exc))
        return
    named = {f"--{k.replace('_', '-')}/{k.upper()}": v for k, v in _secret_values(opts).items()}
    named[WEB_LOGIN_PASSWORD_ENV] = login_password
    short = short_secrets(named)
    if short and not allow_short:
        _refuse_short(", ".join(short))
    target = effective_target(vars(opts), environment.host, DEFAULT_TARGET)
    if not getattr(opts, "secrets_origin", ""):
        opts.secrets_origin = origin(target)
    if not getattr(opts, "secrets_startup_origin", ""):
        opts.secrets_startup_origin = opts.secrets_origin
    runner = environment.runner
    if on_workers and isinstance(runner, MasterRunner):
        held = [k for k, v in _secret_values(opts).items() if v]
        for k in SECRET_OPTIONS:
            if hasattr(opts, k):
                setattr(opts, k, "")
        if held:
            log.warning(
                "--secrets-on-workers: the master ignores the secrets it was given (%s); workers use their own",
                ", ".join(held),
            )
    if on_workers and isinstance(runner, WorkerRunner):
        set_local_secrets(environment, LocalSecrets(_secret_values(opts), origin(target)))
    state = SecurityState(_secret_values(opts), str(opts.secrets_origin), on_workers)
    suite_state(environment).set_runtime("security", state)
    if login_password:
        add_extra_secret(environment, login_password)
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None:
        return
    if getattr(opts, "web_login", False):
        if not login_password:
            _exit(
                "--web-login: set the password in WEB_LOGIN_PASSWORD or in a file named by WEB_LOGIN_PASSWORD_FILE "
                "(never on the command line)"
            )
        from llm_metrics.outputs.weblogin import install_login

        install_login(
            web_ui,
            str(getattr(opts, "web_login_user", "") or "locust"),
            login_password,
            base_path=str(getattr(opts, "web_base_path", "") or ""),
        )
    elif str(getattr(opts, "web_host", "")) not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "the web UI listens on %r without --web-login: anyone who reaches it can start runs; "
            "see README 'Secrets, the web UI, failures'",
            getattr(opts, "web_host", ""),
        )
    install_swarm_guard(environment, web_ui, state)


def install_swarm_guard(environment: Any, web_ui: Any, state: SecurityState) -> None:
    """Check every start form (``POST /swarm``) before Locust applies it (module docstring)."""
    from flask import jsonify, request

    @web_ui.app.before_request
    def _guard_swarm() -> Any:
        if request.endpoint != "locust.swarm" or request.method != "POST":
            return None
        problem = check_form(environment, state, request.form, Path.cwd())
        if problem:
            log.warning("web UI start form refused: %s", problem)
            return jsonify({"success": False, "message": problem, "host": environment.host})
        return None


def check_form(environment: Any, state: SecurityState, form: Any, cwd: Path) -> str:
    """ "" when the form may be applied (after dropping or restoring secrets as the docstring says), else why not."""
    opts = environment.parsed_options
    current = vars(opts)
    shown = set((getattr(environment.web_ui, "template_args", {}) or {}).get("extra_options") or {})
    hidden = sorted(k for k in form if k in current and k not in LOCUST_FORM_KEYS and k not in shown)
    if hidden:
        return f"{', '.join(hidden)}: not settable from the web UI (set it on the command line or in the environment)"
    for key in PATH_OPTIONS:
        if key not in form:
            continue
        value = str(form.get(key) or "").strip()
        if not value or value == str(current.get(key) or ""):
            continue
        if not confined(value, cwd):
            return (
                f"{key}: {value!r} is outside {' and '.join(d + '/' for d in ALLOWED_DIRS)} of the working "
                f"directory {cwd}: the web UI may only use files there"
            )
    typed = {k for k in SECRET_OPTIONS if form.get(k)}
    short = short_secrets({k: str(form.get(k)) for k in sorted(typed)})
    if short and not as_bool(current.get("allow_short_secrets", False), "ALLOW_SHORT_SECRETS"):
        return f"{', '.join(short)}: secrets shorter than {MIN_SECRET_LENGTH} characters are refused"
    if state.secrets_on_workers and typed:
        return (
            f"{', '.join(sorted(typed))}: this master runs with --secrets-on-workers and holds no secret; "
            "set secrets in the workers' environment"
        )
    new = {k: (form.get(k) if k in form else current.get(k)) for k in (*TARGET_OPTIONS, "host")}
    destinations = {origin(effective_target(new, None, DEFAULT_TARGET))}
    if new.get("host"):
        destinations.add(origin(str(new["host"])))
    bound = str(current.get("secrets_origin") or "")
    if destinations == {bound}:
        state.pending_origin = ""
        return ""
    if destinations == {state.startup_origin}:  # back to the start-up target: its secrets come back
        for k, v in state.startup_secrets.items():
            if k not in typed:
                current[k] = v
        opts.secrets_origin = state.startup_origin
        state.pending_origin = ""
        return ""
    new_origin = sorted(destinations)[0] if len(destinations) == 1 else ""
    held = [k for k in SECRET_OPTIONS if current.get(k)]
    if not new_origin:
        return "the host and the suite's target option point to different servers: give one target"
    if not held and not typed:
        opts.secrets_origin = new_origin
        return ""
    if typed:
        for k in SECRET_OPTIONS:
            if k in current and k not in typed:
                current[k] = ""
        opts.secrets_origin = new_origin
        dropped = [k for k in held if k not in typed]
        note = f"; not sent: {', '.join(k.upper() for k in dropped)}" if dropped else ""
        log.warning("web UI: the target is now %s; the secrets entered with it are bound to it%s", new_origin, note)
        state.pending_origin = ""
        return ""
    names = ", ".join(k.upper() for k in held)
    if state.pending_origin != new_origin:
        state.pending_origin = new_origin
        return (
            f"The target changed from {bound} to {new_origin}: {names} are bound to {bound} and will NOT be sent "
            f"to {new_origin}. Enter them again in this form to use them there, or start again to run without them."
        )
    for k in held:
        current[k] = ""
    opts.secrets_origin = new_origin
    state.pending_origin = ""
    log.warning("web UI: the target is now %s; %s dropped for this run (bound to %s)", new_origin, names, bound)
    return ""


def install_security(events: Any) -> None:
    """Register the arguments and the init listener (first, so that suites read the bound secrets)."""
    if getattr(events, "_llm_security_installed", False):
        return
    events._llm_security_installed = True

    @events.init_command_line_parser.add_listener
    def _args(parser: Any, **_kw: Any) -> None:
        add_security_arguments(parser)

    @events.init.add_listener
    def _init(environment: Any, **_kw: Any) -> None:
        on_init(environment)

    @events.test_start.add_listener
    def _start(environment: Any, **_kw: Any) -> None:
        check_worker_mode(environment)


def check_worker_mode(environment: Any) -> None:
    """On a worker: say so when its master runs --secrets-on-workers (forwarded) and this worker does not."""
    state = suite_state(environment).runtime("security", SecurityState)
    opts = environment.parsed_options
    if state is None or opts is None or state.secrets_on_workers or not getattr(opts, "worker", False):
        return
    try:
        master_mode = as_bool(getattr(opts, "secrets_on_workers", False), "SECRETS_ON_WORKERS")
    except ValueError:
        return
    if master_mode:
        log.error(
            "the master runs with --secrets-on-workers and forwards no secret, but this worker was started "
            "without it: it sends no API_KEY/LOADTEST_TOKEN; start it with SECRETS_ON_WORKERS=true"
        )


__all__ = [
    "DEFAULT_WEB_HOST",
    "PATH_OPTIONS",
    "SECRET_OPTIONS",
    "check_form",
    "confined",
    "install_security",
    "read_secret_env",
]
