"""Locust ``LoadTestShape`` classes that run the load profiles of ``conf/shapes.yaml``.

``ProfileShape`` runs the profile named by ``--load-profile`` (env ``PROFILE``); without it, Locust's
own ``--profile`` (a run label in Locust 2.47, so the name ``--profile`` could not be taken) chooses the
profile if it names one, else ``smoke`` runs. ``SmokeShape``, ``LoadShape``, ``StressShape`` and
``SpikeShape`` run their own profile. All read ``--time-scale`` (env ``TIME_SCALE``) and
``--stages-file`` (env ``STAGES_FILE``), and their ``tick()`` delegates to the pure
:func:`shapes.stages.users_at` with ``self.get_run_time()``. ``tick()`` runs on the master (or the local
runner) only.

Use from a locustfile (besides its User classes)::

    from locust import events

    from shapes.locust_shapes import install_shapes

    install_shapes(globals(), events)

Locust 2.47 picks as *the* shape the first concrete ``LoadTestShape`` subclass found in the locustfile's
namespace (headless runs, and the web UI without ``--class-picker``); with ``--class-picker`` the web UI
lists every one of them by class name, plus "Default" (no shape, the user count form). ``install_shapes``
puts ``ProfileShape`` first so that ``--load-profile`` decides headless runs, and the per-profile classes
after it for the picker. Importing the classes by hand is fragile: isort (ruff's ``I`` rules) sorts
``from shapes.locust_shapes import LoadShape, ProfileShape, ...`` alphabetically, and ``LoadShape`` would
then silently become the default shape.

A bad option (unknown profile, non-positive time scale, unreadable or invalid stages file) stops the run
at start-up with a message naming the flag: ``--time-scale`` is checked by the argument parser (exit code
2), the rest by the ``init`` listener that ``install_shapes`` adds (exit code 1). A value changed later in
the web UI form is checked when the shape starts; a bad one is logged and the run is stopped.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import MutableMapping
from typing import Any, ClassVar

from locust.env import Environment
from locust.event import Events
from locust.runners import WorkerRunner
from locust.shape import LoadTestShape

from shapes.config import DEFAULT_STAGES_FILE
from shapes.options import (
    DEFAULT_PROFILE,
    DEFAULT_TIME_SCALE,
    PROFILE_DEST,
    PROFILE_ENV,
    PROFILE_FLAG,
    STAGES_FILE_DEST,
    STAGES_FILE_ENV,
    STAGES_FILE_FLAG,
    TIME_SCALE_DEST,
    TIME_SCALE_ENV,
    TIME_SCALE_FLAG,
    ShapeOptionError,
    ShapePlan,
    parse_time_scale,
    resolve_plan,
)

__all__ = [
    "SHAPE_CLASSES",
    "LoadShape",
    "ProfileShape",
    "SmokeShape",
    "SpikeShape",
    "StressShape",
    "add_shape_arguments",
    "check_shape_options",
    "current_plan",
    "install_shapes",
]

logger = logging.getLogger(__name__)


class ProfileShape(LoadTestShape):
    """Runs the profile named by ``--load-profile`` from ``--stages-file`` at ``--time-scale``.

    The options are read when a run starts (so web UI form edits apply to the next run); constructor
    arguments, when given, take precedence over them (for use without Locust's command line).
    """

    #: A fixed profile name (the per-profile subclasses); ``None`` reads ``--load-profile``.
    profile_name: ClassVar[str | None] = None

    def __init__(
        self, profile: str | None = None, time_scale: float | None = None, stages_file: str | None = None
    ) -> None:
        super().__init__()
        self._profile_arg = profile
        self._time_scale_arg = time_scale
        self._stages_file_arg = stages_file
        #: The plan of the current run, resolved at its first tick; ``None`` before that.
        self.plan: ShapePlan | None = None
        #: ``time.time()`` when the current run started (``get_run_time()`` counts from here).
        self.wall_start: float = time.time()
        self._just_resolved = False  # the last tick resolved the plan (see reset_time)

    def reset_time(self) -> None:
        """Called by Locust when a run starts: restart the clock and re-read the options.

        A master calls it twice per run: in ``start_shape()`` and again in ``start()`` right after the
        first tick; the plan that first tick resolved is kept rather than read a second time.
        """
        super().reset_time()
        self.wall_start = time.time()
        if self._just_resolved:
            self._just_resolved = False
        else:
            self.plan = None

    def _option(self, override: object, dest: str, env: str, default: object) -> object:
        if override is not None:
            return override
        runner = self.runner
        parsed = runner.environment.parsed_options if runner is not None else None
        if parsed is not None and hasattr(parsed, dest):
            return getattr(parsed, dest)
        return os.environ.get(env, default)

    def resolve(self) -> ShapePlan:
        """The plan the options describe; :class:`ShapeOptionError` naming the flag if one is bad."""
        fixed = self._profile_arg or self.profile_name
        source = type(self).__name__ if self._profile_arg is None and self.profile_name is not None else None
        return resolve_plan(
            fixed or self._option(None, PROFILE_DEST, PROFILE_ENV, None),
            self._option(self._time_scale_arg, TIME_SCALE_DEST, TIME_SCALE_ENV, DEFAULT_TIME_SCALE),
            self._option(self._stages_file_arg, STAGES_FILE_DEST, STAGES_FILE_ENV, None),
            profile_source=source,
            locust_profile=None if fixed else self._option(None, "profile", "LOCUST_PROFILE", None),
        )

    def tick(self) -> tuple[int, float] | None:
        """``(user_count, spawn_rate)`` of the profile at ``get_run_time()``; ``None`` stops the run."""
        self._just_resolved = False
        if self.plan is None:
            try:
                self.plan = self.resolve()
            except ShapeOptionError as exc:
                logger.error("%s: %s; stopping the run", type(self).__name__, exc)
                self._fail()
                return None
            self._just_resolved = True
            for note in self.plan.notes:
                logger.warning("%s: %s", type(self).__name__, note)
            logger.info("%s: %s", type(self).__name__, self.plan.describe())
        return self.plan.tick(self.get_run_time())

    def spike_window(self) -> tuple[float, float] | None:
        """``(spike_start_s, spike_end_s)`` of the current run in ``get_run_time()`` seconds, if any."""
        return None if self.plan is None else self.plan.spike_window()

    def _fail(self) -> None:
        runner = self.runner
        if runner is None:
            return
        options = runner.environment.parsed_options
        if options is not None and getattr(options, "headless", False):
            runner.environment.process_exit_code = 1


class SmokeShape(ProfileShape):
    """Seed 000's smoke profile: 1 user for 30 s."""

    profile_name = "smoke"


class LoadShape(ProfileShape):
    """Seed 000's load profile: ramp 0 -> 50 over 2 min, 50 for 5 min, ramp down over 2 min."""

    profile_name = "load"


class StressShape(ProfileShape):
    """Seed 000's stress profile: 100 -> 200 -> 300 users in 2 min ramps and 5 min plateaus, 26 min."""

    profile_name = "stress"


class SpikeShape(ProfileShape):
    """Seed 000's spike profile: 10 users, 10 -> 500 in 10 s, 1 min at 500, back to 10; 6 min."""

    profile_name = "spike"


#: The classes ``install_shapes`` puts into a locustfile, in this order (the first is the default).
SHAPE_CLASSES: tuple[type[ProfileShape], ...] = (ProfileShape, SmokeShape, LoadShape, StressShape, SpikeShape)


def _time_scale_type(value: str) -> float:
    try:
        return parse_time_scale(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_shape_arguments(parser: Any) -> None:
    """Add ``--load-profile``, ``--time-scale`` and ``--stages-file`` to Locust's argument parser.

    Call it from an ``init_command_line_parser`` listener (``install_shapes`` does). The options show
    in the web UI form and are forwarded by the master to the workers. Adding them twice is a no-op.
    """
    if PROFILE_FLAG in getattr(parser, "_option_string_actions", {}):
        return
    parser.add_argument(
        PROFILE_FLAG,
        type=str,
        default="",
        env_var=PROFILE_ENV,
        help=f"Load profile to run, a name in the stages file (smoke, load, stress, spike in the default "
        f"file). Env {PROFILE_ENV}. Default: Locust's --profile if it names a profile, else {DEFAULT_PROFILE}",
    )
    parser.add_argument(
        TIME_SCALE_FLAG,
        type=_time_scale_type,
        default=DEFAULT_TIME_SCALE,
        env_var=TIME_SCALE_ENV,
        help=f"Multiply every stage duration by this positive factor (0.1 runs a profile 10x faster). "
        f"Env {TIME_SCALE_ENV}. Default: {DEFAULT_TIME_SCALE:g}",
    )
    parser.add_argument(
        STAGES_FILE_FLAG,
        type=str,
        default=str(DEFAULT_STAGES_FILE),
        env_var=STAGES_FILE_ENV,
        help=f"YAML file of load profiles. Env {STAGES_FILE_ENV}. Default: the project's conf/shapes.yaml",
    )


def current_plan(environment: Environment) -> ShapePlan | None:
    """The plan of the running profile shape, ``None`` without one or before its first tick."""
    shape = environment.shape_class
    return shape.plan if isinstance(shape, ProfileShape) else None


def check_shape_options(environment: Environment, **_kwargs: Any) -> None:
    """``init`` listener: exit with a message naming the flag if the selected shape's options are bad.

    Does nothing on workers (the shape runs on the master) or when the selected shape is not ours.
    """
    if isinstance(environment.runner, WorkerRunner):
        return
    shape = environment.shape_class
    if not isinstance(shape, ProfileShape):
        return
    try:
        shape.resolve()
    except ShapeOptionError as exc:
        logger.error("%s: %s", type(shape).__name__, exc)
        sys.exit(1)


def _on_command_line_parser(parser: Any, **_kwargs: Any) -> None:
    add_shape_arguments(parser)


def install_shapes(
    namespace: MutableMapping[str, Any],
    events: Events | None = None,
    *,
    per_profile_classes: bool = True,
) -> None:
    """Make a locustfile run the load profiles: call it once at the locustfile's top level.

    Puts ``ProfileShape`` (then, unless ``per_profile_classes`` is false, ``SmokeShape``, ``LoadShape``,
    ``StressShape``, ``SpikeShape``) into ``namespace`` (pass ``globals()``), in that order, so that
    Locust's default shape is ``ProfileShape``; any shape class the locustfile defined *before* the call
    would come first and win. Registers on ``events`` (default ``locust.events``) the listeners adding
    the command-line options and checking them at ``init``.
    """
    if events is None:
        from locust import events as default_events

        events = default_events
    classes = SHAPE_CLASSES if per_profile_classes else SHAPE_CLASSES[:1]
    for cls in classes:
        namespace.pop(cls.__name__, None)
    for cls in classes:
        namespace[cls.__name__] = cls
    for hook, listener in (
        (events.init_command_line_parser, _on_command_line_parser),
        (events.init, check_shape_options),
    ):
        try:  # calling install_shapes twice must not register (and run) the listeners twice
            hook.remove_listener(listener)
        except ValueError:
            pass
        hook.add_listener(listener)
