"""Specification of the stage arithmetic (shapes.stages), evaluated on grids of times, without sleeping.

The profiles are the ones of conf/shapes.yaml (seed 000); the user counts at every stage boundary and
mid-ramp are the k6 ones, checked against a port of k6's own ramping-vus step computation.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapes.config import DEFAULT_STAGES_FILE, load_profiles
from shapes.stages import (
    SPAWN_WINDOW_S,
    Profile,
    Stage,
    ramp_seconds,
    spawn_rate_at,
    spike_window,
    stage_bounds,
    stage_index_at,
    total_duration,
    users_at,
)

PROFILES = load_profiles(DEFAULT_STAGES_FILE)
SMOKE, LOAD, STRESS, SPIKE = (PROFILES[name] for name in ("smoke", "load", "stress", "spike"))


def users(profile: Profile, t: float, scale: float = 1.0) -> int | None:
    result = users_at(profile, t, scale)
    return None if result is None else result[0]


# --- the four profiles of seed 000 -------------------------------------------------------------------


def test_default_file_holds_the_four_seed_profiles_with_their_exact_stages() -> None:
    assert sorted(PROFILES) == ["load", "smoke", "spike", "stress"]
    assert [(s.duration, s.target) for s in SMOKE.stages] == [(30, 1)]
    assert SMOKE.start_users == 1
    assert [(s.duration, s.target) for s in LOAD.stages] == [(120, 50), (300, 50), (120, 0)]
    assert [(s.duration, s.target) for s in STRESS.stages] == [
        (120, 100),
        (300, 100),
        (120, 200),
        (300, 200),
        (120, 300),
        (300, 300),
        (300, 0),
    ]
    assert [(s.duration, s.target, s.spike) for s in SPIKE.stages] == [
        (10, 10, False),
        (50, 10, False),
        (10, 500, False),
        (60, 500, True),
        (10, 10, False),
        (220, 10, False),
    ]
    assert [p.start_users for p in (LOAD, STRESS, SPIKE)] == [0, 0, 0]


@pytest.mark.parametrize(
    ("profile", "seconds"),
    [(SMOKE, 30), (LOAD, 9 * 60), (STRESS, 26 * 60), (SPIKE, 6 * 60)],
    ids=["smoke 30 s", "load 9 min", "stress 26 min", "spike 6 min"],
)
def test_total_durations_are_the_seed_ones(profile: Profile, seconds: float) -> None:
    assert total_duration(profile) == seconds
    assert total_duration(profile, 0.1) == pytest.approx(seconds / 10)


@pytest.mark.parametrize(
    ("t", "expected"),
    [(0, 1), (0.5, 1), (15, 1), (29.999, 1), (30, None), (31, None)],
)
def test_smoke_is_one_user_for_30_seconds(t: float, expected: int | None) -> None:
    assert users(SMOKE, t) == expected


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (0, 0),  # k6 starts from 0 here
        (2.39, 0),  # one user every 120/50 = 2.4 s
        (2.4, 1),
        (60, 25),  # mid-ramp
        (119, 49),
        (120, 50),  # end of the ramp
        (300, 50),
        (420, 50),  # start of the ramp down
        (422.39, 50),
        (422.4, 49),  # ramping down, a user leaves every 2.4 s
        (480, 25),  # mid ramp down
        (539, 1),
        (539.999, 1),
        (540, None),  # over: Locust stops
    ],
)
def test_load_ramps_to_50_holds_and_ramps_down(t: float, expected: int | None) -> None:
    assert users(LOAD, t) == expected


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (0, 0),
        (60, 50),
        (120, 100),  # 2 min ramp to 100
        (420, 100),  # 5 min at 100
        (480, 150),
        (540, 200),  # 2 min ramp to 200
        (840, 200),  # 5 min at 200
        (900, 250),
        (960, 300),  # 2 min ramp to 300
        (1260, 300),  # 5 min at 300
        (1410, 150),  # mid ramp down
        (1559, 1),
        (1560, None),  # 26 min
    ],
)
def test_stress_climbs_100_200_300_then_ramps_down(t: float, expected: int | None) -> None:
    assert users(STRESS, t) == expected


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (0, 0),
        (5, 5),  # 10 s ramp 0 -> 10
        (9.99, 9),
        (10, 10),  # baseline reached
        (35, 10),
        (60, 10),  # surge starts
        (61, 59),  # 49 users a second
        (65, 255),  # mid surge
        (69.99, 499),
        (70, 500),  # spike plateau starts
        (100, 500),
        (129.99, 500),
        (130, 500),  # spike ends, back down
        (131, 451),
        (135, 255),
        (139.99, 11),
        (140, 10),  # baseline again
        (300, 10),
        (359.99, 10),
        (360, None),  # 6 min
    ],
)
def test_spike_surges_from_10_to_500_and_back(t: float, expected: int | None) -> None:
    assert users(SPIKE, t) == expected


def test_spike_window_is_the_stage_marked_spike() -> None:
    assert spike_window(SPIKE) == (70, 130)
    assert spike_window(SPIKE, 0.02) == pytest.approx((1.4, 2.6))
    assert spike_window(LOAD) is None


def test_stage_bounds_and_index() -> None:
    assert stage_bounds(SPIKE) == [(0, 10), (10, 60), (60, 70), (70, 130), (130, 140), (140, 360)]
    grid = {0: 0, 9.9: 0, 10: 1, 59: 1, 60: 2, 70: 3, 129.9: 3, 130: 4, 140: 5, 359.9: 5, 360: None, 1e6: None}
    for t, index in grid.items():
        assert stage_index_at(SPIKE, t) == index, t
        assert stage_index_at(SPIKE, t * 0.1, 0.1) == index, t


def test_times_before_the_start_count_as_the_start() -> None:
    assert users(SPIKE, -5) == 0
    assert users(SMOKE, -5) == 1


# --- time scale --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.1, 0.02, 0.5, 3.0])
@pytest.mark.parametrize("profile", [SMOKE, LOAD, STRESS, SPIKE], ids=lambda p: p.name)
def test_time_scale_compresses_the_profile_without_changing_its_counts(profile: Profile, scale: float) -> None:
    total = total_duration(profile)
    for tenth in range(0, int(total * 10) + 20):
        t = tenth / 10
        assert users(profile, t * scale, scale) == users(profile, t), (t, scale)


def test_time_scale_0_1_runs_load_ten_times_faster() -> None:
    assert users(LOAD, 6.0, 0.1) == 25  # the 60 s mid-ramp point
    assert users(LOAD, 12.0, 0.1) == 50
    assert users(LOAD, 53.99, 0.1) == 1
    assert users_at(LOAD, 54.0, 0.1) is None


@pytest.mark.parametrize("scale", [0, -1, math.nan, math.inf])
def test_time_scale_must_be_positive(scale: float) -> None:
    with pytest.raises(ValueError, match="time_scale must be a positive number"):
        users_at(LOAD, 1, scale)
    with pytest.raises(ValueError, match="time_scale must be a positive number"):
        total_duration(LOAD, scale)


# --- spawn rate: every per-tick target is reachable within one tick ---------------------------------


def test_spawn_rate_lets_one_tick_catch_up_with_the_ramp() -> None:
    # spike surge: 490 users in 10 s is 49 a tick; a late tick may see up to 2 s of it, plus rounding
    assert spawn_rate_at(SPIKE, 65) == 99
    assert spawn_rate_at(SPIKE, 5) == 3  # 10 users in 10 s
    assert spawn_rate_at(LOAD, 60) == 2  # 50 users in 120 s
    assert spawn_rate_at(SMOKE, 0) == 1  # the jump from 0 to the start value
    # at time scale 0.02 the surge takes 0.2 s: one tick must take all of it at once
    assert (spawn_rate_at(SPIKE, 2.0, 0.02) or 0) >= 490
    assert spawn_rate_at(LOAD, 540) is None


def test_spawn_rate_is_constant_within_a_stage() -> None:
    """So that Locust, which restarts spawning whenever the tuple changes, is only told what changed."""
    for profile in (SMOKE, LOAD, STRESS, SPIKE):
        for (start, end), _ in zip(stage_bounds(profile), profile.stages, strict=True):
            rates = {spawn_rate_at(profile, start + (end - start) * k / 50) for k in range(50)}
            assert len(rates) == 1, (profile.name, start)


def test_a_stage_shorter_than_a_tick_is_not_skipped() -> None:
    """Locust's own example of a skipped stage: a long ramp followed by short ones."""
    stages = [Stage(50, 100), Stage(0.5, 120), Stage(0.5, 130), Stage(10, 130)]
    seen = [users_at(stages, t) for t in (49.0, 50.0, 50.5, 51.0)]
    assert [s[0] for s in seen if s is not None] == [98, 100, 120, 130]
    for before, after in itertools.pairwise(seen):
        assert before is not None and after is not None
        assert abs(after[0] - before[0]) <= after[1]


# --- stage options -----------------------------------------------------------------------------------


def test_bare_stages_start_from_zero_unless_told_otherwise() -> None:
    stages = [Stage(10, 10)]
    assert users_at(stages, 0) == (0, 3.0)
    assert users_at(stages, 0, start_users=4) == (4, 7.0)  # 4 at once, plus 3 for a tick of the ramp
    assert users_at(stages, 5, start_users=4) == (7, 7.0)


def test_a_zero_duration_stage_jumps_at_once() -> None:
    stages = [Stage(5, 2), Stage(0, 40), Stage(5, 40)]
    assert [users(Profile("jump", tuple(stages)), t) for t in (4.9, 5, 9.9)] == [1, 40, 40]
    at_jump = users_at(stages, 5)
    assert at_jump is not None and at_jump[1] >= 38


def test_an_explicit_spawn_rate_ramps_then_holds() -> None:
    stages = [Stage(60, 20, spawn_rate=2)]  # 10 s of ramp, then 50 s at 20
    assert [users(Profile("p", tuple(stages)), t) for t in (0, 5, 9.9, 10, 30, 59)] == [0, 10, 19, 20, 20, 20]
    assert ramp_seconds(stages[0], 0) == 10


def test_an_explicit_spawn_rate_too_slow_for_its_stage_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"a ramp of 100 users at spawn_rate 1/s takes 100 s, longer than the stage \(10 s\)"
    ):
        Profile("slow", (Stage(10, 100, spawn_rate=1),))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration": -1, "target": 1}, "Stage.duration must be a non-negative number of seconds"),
        ({"duration": 1, "target": -1}, "Stage.target must be a non-negative integer"),
        ({"duration": 1, "target": 1.5}, "Stage.target must be a non-negative integer"),
        ({"duration": 1, "target": True}, "Stage.target must be a non-negative integer"),
        ({"duration": 1, "target": 1, "spawn_rate": 0}, "Stage.spawn_rate must be a positive number"),
    ],
)
def test_stage_refuses_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Stage(**kwargs)  # type: ignore[arg-type]


def test_profile_refuses_two_spikes_and_no_stages() -> None:
    with pytest.raises(ValueError, match="more than one stage as spike"):
        Profile("p", (Stage(1, 1, spike=True), Stage(1, 1, spike=True)))
    with pytest.raises(ValueError, match="has no stages"):
        Profile("p", ())


# --- properties: k6's ramp, bounds, per-tick reachability -------------------------------------------


def _k6_steps(start: int, stages: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Port of k6's RampingVUsConfig.getRawExecutionSteps for one unsegmented instance (times in ns)."""
    steps = [(0, start)]

    def add(offset: int, vus: int) -> None:
        if steps[-1][1] != vus:
            steps.append((offset, vus))

    from_vus = unscaled = start
    time_till_end = 0
    for duration_s, target in stages:
        duration = duration_s * 1_000_000_000
        time_till_end += duration
        diff = target - from_vus
        if diff == 0:
            continue
        if duration == 0:
            unscaled = target
            add(time_till_end, target)
            from_vus = target
            continue
        if unscaled > target:  # ramp down
            while unscaled > target:
                add(time_till_end - (duration * (unscaled - target - 1)) // -diff, unscaled - 1)
                unscaled -= 1
        else:
            while unscaled <= target:
                add(time_till_end - (duration * (target - unscaled)) // diff, unscaled)
                unscaled += 1
        from_vus = target
    return steps


def _k6_vus_at(steps: list[tuple[int, int]], t_ns: int) -> int:
    vus = steps[0][1]
    for offset, planned in steps:
        if offset > t_ns:
            break
        vus = planned
    return vus


stage_lists = st.lists(
    st.tuples(st.integers(min_value=0, max_value=120), st.integers(min_value=0, max_value=150)),
    min_size=1,
    max_size=6,
).filter(lambda stages: sum(d for d, _ in stages) > 0)


@settings(max_examples=150, deadline=None)
@given(stages=stage_lists, start=st.integers(min_value=0, max_value=30))
def test_counts_are_exactly_k6_ramping_vus(stages: list[tuple[int, int]], start: int) -> None:
    profile = Profile("k6", tuple(Stage(d, t) for d, t in stages), start_users=start)
    steps = _k6_steps(start, stages)
    total_ns = sum(d for d, _ in stages) * 1_000_000_000
    # every k6 step, the millisecond before it, and a coarse grid in between
    times = {offset for offset, _ in steps} | {offset - 1_000_000 for offset, _ in steps}
    times |= set(range(0, total_ns, 1_009_000_000))
    for t_ns in sorted(t for t in times if 0 <= t < total_ns):
        assert users(profile, t_ns / 1e9) == _k6_vus_at(steps, t_ns), t_ns


@settings(max_examples=150, deadline=None)
@given(
    stages=stage_lists,
    start=st.integers(min_value=0, max_value=30),
    scale=st.sampled_from([1.0, 0.1, 0.02, 2.0]),
    t=st.floats(min_value=0, max_value=800),
    gap=st.floats(min_value=0.001, max_value=SPAWN_WINDOW_S),
)
def test_one_tick_can_always_reach_the_next_target(
    stages: list[tuple[int, int]], start: int, scale: float, t: float, gap: float
) -> None:
    """Whatever the stages and the scale, the change between two ticks at most SPAWN_WINDOW_S apart is
    within the spawn rate Locust is given, so its dispatcher reaches the target in one step."""
    profile = Profile("p", tuple(Stage(d, x) for d, x in stages), start_users=start)
    t *= scale
    before, after = users_at(profile, t, scale), users_at(profile, t + gap, scale)
    if before is None or after is None:
        return
    assert abs(after[0] - before[0]) <= after[1]
    if t + gap <= SPAWN_WINDOW_S:  # the first tick starts from no users at all
        assert after[0] <= after[1]


@settings(max_examples=150, deadline=None)
@given(stages=stage_lists, start=st.integers(min_value=0, max_value=30), t=st.floats(min_value=0, max_value=800))
def test_the_count_stays_between_the_stage_end_points(stages: list[tuple[int, int]], start: int, t: float) -> None:
    profile = Profile("p", tuple(Stage(d, x) for d, x in stages), start_users=start)
    index = stage_index_at(profile, t)
    result = users_at(profile, t)
    assert (index is None) == (result is None)
    if index is None or result is None:
        assert t >= total_duration(profile) - 1e-9
        return
    low = start if index == 0 else profile.stages[index - 1].target
    high = profile.stages[index].target
    assert min(low, high) <= result[0] <= max(low, high)


def test_the_pure_modules_do_not_import_locust() -> None:
    code = "import sys, shapes, shapes.stages, shapes.config, shapes.options; print('locust' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
