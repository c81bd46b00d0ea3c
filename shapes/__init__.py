"""Load shapes: k6-style stages as a pure function of time, and the Locust shape classes that run them.

- :mod:`shapes.stages`: the stage model and ``users_at`` / ``total_duration`` / ``stage_index_at`` /
  ``spike_window`` (pure, no Locust import).
- :mod:`shapes.config`: ``load_profiles`` reads and validates ``conf/shapes.yaml`` (pure).
- :mod:`shapes.options`: the ``--load-profile`` / ``--time-scale`` / ``--stages-file`` options and their
  resolution into a ``ShapePlan`` (pure).
- :mod:`shapes.locust_shapes`: ``ProfileShape`` and the per-profile classes, ``install_shapes``,
  ``add_shape_arguments`` (imports Locust, hence not imported here).
"""

from shapes.config import DEFAULT_STAGES_FILE, ShapeConfigError, load_profiles, parse_profiles
from shapes.options import ShapeOptionError, ShapePlan, resolve_plan
from shapes.stages import (
    Profile,
    Stage,
    spike_window,
    stage_bounds,
    stage_index_at,
    total_duration,
    users_at,
)

__all__ = [
    "DEFAULT_STAGES_FILE",
    "Profile",
    "ShapeConfigError",
    "ShapeOptionError",
    "ShapePlan",
    "Stage",
    "load_profiles",
    "parse_profiles",
    "resolve_plan",
    "spike_window",
    "stage_bounds",
    "stage_index_at",
    "total_duration",
    "users_at",
]
