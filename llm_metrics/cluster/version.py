"""The suite's version, compared between a distributed run's master and its workers (``llm_metrics.cluster.health``).

It is the installed project's version (package metadata of ``llm-locust``, ``pyproject.toml``), so a worker
built from another release of the suite is refused by the master. ``LLM_LOCUST_VERSION_OVERRIDE`` replaces it:
it exists for the tests only (to start a worker that claims another version), not for users. No Locust import.
"""

from __future__ import annotations

import os
from importlib import metadata

__all__ = ["DISTRIBUTION", "OVERRIDE_ENV", "package_version", "suite_version"]

DISTRIBUTION = "llm-locust"
OVERRIDE_ENV = "LLM_LOCUST_VERSION_OVERRIDE"
"""Test-only: the version this process claims instead of its own."""


def package_version() -> str:
    """The installed version of the suite, or ``0+unknown`` when it runs from a tree that is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def suite_version() -> str:
    """The version this process runs (the test-only override when set)."""
    return os.environ.get(OVERRIDE_ENV) or package_version()
