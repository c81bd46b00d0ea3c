"""Synthetic prompts: exact local token counts, calibration against other tokenizers, length distributions."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable

import pytest

from llm_users.workload.synthetic import Calibration, LengthDist, SyntheticText, local_tokens, parse_dist

MOCK_RULE = re.compile(r"\w+|[^\w\s]")


@pytest.mark.parametrize("n", [1, 2, 3, 7, 19, 64, 500, 4096])
def test_the_text_has_exactly_n_tokens_by_the_mocks_rule(n: int) -> None:
    text = SyntheticText().text(n, random.Random(n))
    assert local_tokens(text) == n == len(MOCK_RULE.findall(text))


def test_texts_read_like_sentences_and_differ_per_generator() -> None:
    gen = SyntheticText()
    a, b = gen.text(200, random.Random(1)), gen.text(200, random.Random(2))
    assert a != b and a[:40] != b[:40]  # no shared prefix for a server's prefix cache to find
    assert a == gen.text(200, random.Random(1))  # a seed repeats a run
    assert a[0].isupper() and ". " in a and all(c.isalpha() or c in " .," for c in a)


def test_a_vocabulary_must_be_words() -> None:
    with pytest.raises(ValueError, match="alphabetic words"):
        SyntheticText(["ok", "not ok"])
    with pytest.raises(ValueError, match="at least 1 token"):
        SyntheticText().text(0, random.Random())


# Tokenizers unlike the mock's, as a real server's would be: the calibration must bring prompts within 10%.
def chars_over_4(text: str) -> int:
    return math.ceil(len(text) / 4) + 7  # a rough BPE rule, plus a chat template's constant


def subwords(text: str) -> int:
    # words of more than 6 letters cost 2 tokens, punctuation 1; a template of 12 tokens
    return 12 + sum(2 if len(w) > 6 else 1 for w in re.findall(r"\w+", text)) + len(re.findall(r"[^\w\s]", text))


def words_times_1_3(text: str) -> int:
    return round(1.3 * local_tokens(text)) + 3


@pytest.mark.parametrize("tokenizer", [chars_over_4, subwords, words_times_1_3, local_tokens])
@pytest.mark.parametrize("target", [50, 200, 1000, 4000])
def test_calibrated_prompts_land_within_10_percent_of_the_target(tokenizer: Callable[[str], int], target: int) -> None:
    gen = SyntheticText()
    probe_rng = random.Random(99)
    points = [(n, tokenizer(gen.text(n, probe_rng))) for n in (64, 512)]
    cal = Calibration.fit(points)
    rng = random.Random(target)
    # a short text of a tokenizer that counts words unevenly varies by a few tokens whatever the fit
    allowed = max(0.1 * target, 6 if tokenizer is subwords else 0)
    for _ in range(5):
        served = tokenizer(gen.text(cal.local_for(target), rng))
        assert abs(served - target) <= allowed, (tokenizer.__name__, target, served, cal)


def test_the_identity_calibration_is_the_mocks_rule() -> None:
    cal = Calibration()
    assert cal.local_for(300) == 300 and cal.predict(300) == 300
    assert "not calibrated" in cal.describe()


def test_fit_finds_the_template_constant_and_the_ratio() -> None:
    cal = Calibration.fit([(64, 90), (512, 672)])
    assert cal.overhead == pytest.approx(6.857, abs=1e-3) and cal.ratio == pytest.approx(1.299, abs=1e-3)
    assert cal.local_for(1000) == round((1000 - cal.overhead) / cal.ratio) == 764
    assert cal.local_for(1000, with_overhead=False) == round(1000 / cal.ratio) == 770
    assert "6.9 + 1.299 x local tokens" in cal.describe()


@pytest.mark.parametrize(
    ("points", "message"),
    [([], "at least one probe"), ([(64, 0)], "positive token counts"), ([(64, 100), (512, 90)], "do not grow")],
)
def test_fits_that_make_no_sense_are_refused(points: list[tuple[int, int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Calibration.fit(points)


# -- length distributions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "lo", "hi"),
    [
        ("512", 512, 512),
        ("fixed:64", 64, 64),
        ("uniform:100:900", 100, 900),
        ("normal:500:100:300:700", 300, 700),
        ("lognormal:300:0.8:20:4000", 20, 4000),
    ],
)
def test_lengths_stay_within_their_bounds_and_are_whole(spec: str, lo: int, hi: int) -> None:
    dist = parse_dist(spec)
    rng = random.Random(1)
    draws = [dist.sample_int(rng) for _ in range(2000)]
    assert lo <= min(draws) and max(draws) <= hi
    assert all(isinstance(d, int) for d in draws)
    if lo != hi:
        assert len(set(draws)) > 10


def test_think_times_are_seconds_with_fractions() -> None:
    dist = parse_dist("exp:2:10", integer=False)
    draws = [dist.sample(random.Random(i)) for i in range(500)]
    assert min(draws) >= 0 and max(draws) <= 10 and 1.5 < sum(draws) / len(draws) < 2.5
    assert parse_dist("0", integer=False).sample(random.Random()) == 0.0
    assert parse_dist("uniform:0.5:1.5", integer=False).sample(random.Random(3)) != 1.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lots", "expected a length spec N | uniform:MIN:MAX"),
        ("0", "expected an integer >= 1"),
        ("2.5", "expected an integer >= 1"),
        ("uniform:9:3", "uniform:MIN:MAX needs 1 <= MIN <= MAX"),
        ("normal:-5:2", "normal needs a centre > 0"),
        ("poisson:3", "expected a length spec"),
    ],
)
def test_bad_length_specs_say_what_was_expected(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_dist(spec)


def test_a_dist_prints_as_its_spec() -> None:
    assert str(parse_dist("uniform:1:5")) == "uniform:1:5"
    assert isinstance(parse_dist("7"), LengthDist) and parse_dist("7").mean_hint == 7
