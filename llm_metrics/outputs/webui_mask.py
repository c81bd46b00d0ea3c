"""Secrets out of every answer of the web UI, and the masked values of the start form taken back as unchanged.

Locust's own pages hold values the suite does not render: the start page's host and option fields, the HTML
report (``/stats/report``), the JSON answers of ``/swarm`` and the names of downloaded files (a
``Content-Disposition`` header with the host in it). A target URL with credentials (``https://user:key@host``)
would show in all of them. ``mask_answers`` passes every text answer (HTML, JSON, CSV, plain text) and that
header through ``masking.redact``: each secret in each encoded form, and every URL's user information, become
``***``.

A field of the start form sent back as it was shown (masked) would then set the option to the masked text,
and the run would lose its credentials. ``restore_masked_fields`` runs before every other check of a
``POST /swarm``: a field whose value is exactly what the page showed for a value that masking changed gets that
value back, the way a blanked secret field means "unchanged" (``webui.hide_secret_values``). A value typed in
replaces it as before.

Nothing happens at import: Flask is imported when the hooks are installed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from llm_metrics.engine import masking

TEXT_TYPES = ("application/json", "application/javascript", "application/xml")


def _is_text(mimetype: str) -> bool:
    return mimetype.startswith("text/") or mimetype in TEXT_TYPES or mimetype.endswith("+json")


def mask_answer(response: Any, secrets: list[str]) -> Any:
    """``response`` (a Flask response) with its text and its ``Content-Disposition`` header masked; a file sent
    as is (``direct_passthrough``), a streamed or a binary answer keeps its body."""
    disposition = response.headers.get("Content-Disposition")
    if disposition:
        response.headers["Content-Disposition"] = masking.redact(disposition, secrets)
    if response.direct_passthrough or response.is_streamed or not _is_text(response.mimetype or ""):
        return response
    text = response.get_data(as_text=True)
    masked = masking.redact(text, secrets)
    if masked != text:
        data = response.get_json(silent=True) if response.is_json else None
        # JSON stays JSON: its strings and keys masked (a secret of digits inside a number is left whole)
        response.set_data(json.dumps(masking.redact_obj(data, secrets)) if data is not None else masked)
    return response


def shown_values(web_ui: Any, environment: Any) -> dict[str, str]:
    """The start form's fields as the page computes them (before masking): the host and every extra option."""
    args = web_ui.template_args
    shown = {"host": str(args.get("host") or getattr(environment, "host", None) or "")}
    for key, option in (args.get("extra_options") or {}).items():
        if isinstance(option, dict) and isinstance(option.get("default_value"), str):
            shown[key] = option["default_value"]
    return shown


def restore_masked_fields(form: Any, shown: dict[str, str], secrets: list[str]) -> dict[str, str]:
    """The fields of ``form`` sent back masked, each with the value the page was showing: {key: real value}."""
    restored = {}
    for key, real in shown.items():
        value = form.get(key)
        if value is None or not real or value == real:
            continue
        if value == masking.redact(real, secrets):
            restored[key] = real
    return restored


def install_masking(web_ui: Any, environment: Any, secrets: Callable[[], list[str]]) -> None:
    """Mask every answer of ``web_ui`` (registered first of the suite's ``after_request`` hooks, so it runs
    after them all), and take masked start-form fields back as unchanged before any other ``before_request``
    hook, the swarm guard of ``llm_users.common.security`` included, reads the form."""
    from flask import request
    from werkzeug.datastructures import ImmutableMultiDict

    if getattr(web_ui, "_llm_answers_masked", False):
        return
    web_ui._llm_answers_masked = True

    def _restore() -> None:
        if request.endpoint != "locust.swarm" or request.method != "POST":
            return
        restored = restore_masked_fields(request.form, shown_values(web_ui, environment), secrets())
        if restored:
            items = [(k, restored.get(k, v)) for k, v in request.form.items(multi=True)]
            request.form = ImmutableMultiDict(items)

    # Flask runs before_request hooks in the order registered; the swarm guard is registered earlier (at init)
    # and must see the real values, so this one goes first.
    web_ui.app.before_request_funcs.setdefault(None, []).insert(0, _restore)

    @web_ui.app.after_request
    def _mask(response: Any) -> Any:
        return mask_answer(response, secrets())
