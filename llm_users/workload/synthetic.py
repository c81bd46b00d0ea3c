"""Synthetic prompts of a chosen length in the server's tokens, without a tokenizer; length distributions.

No tokenizer is downloaded. The generator writes English-like text whose length it controls exactly in
*local tokens*: matches of ``\\w+|[^\\w\\s]`` (each word, each punctuation mark), the rule the built-in mock
counts prompt tokens by. A real server's tokenizer counts differently, but for text drawn from one fixed
vocabulary its count is close to a straight line in the local count, plus a constant for the chat template
around the message. ``Calibration`` is that line, fitted on probes the server answered with
``usage.prompt_tokens`` (``fit``); ``local_for(n)`` then says how many local tokens to write for the server to
count about ``n``. Without probes (``Calibration()``) the server is assumed to count as the mock does.

Every text comes from the caller's ``random.Random``: distinct generators give distinct texts, so prompts do
not share prefixes by accident (a server's prefix cache would make them look fast), and a fixed seed
repeats a run exactly.

``LengthDist`` parses and samples the length knobs (``512``, ``uniform:100:900``, ``normal:500:100``,
``lognormal:300:0.8:20:4000``, ``exp:2``). Pure: no Locust, no sockets.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DIST_SPEC",
    "Calibration",
    "LengthDist",
    "SyntheticText",
    "local_tokens",
    "parse_dist",
]

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")

DIST_SPEC = "N | uniform:MIN:MAX | normal:MEAN:SD[:MIN:MAX] | lognormal:MEDIAN:SIGMA[:MIN:MAX] | exp:MEAN[:MAX]"

# Common English words, lower case, letters only (one local token each). Short and frequent, as most prompts
# are; a BPE tokenizer counts most of them as one token.
_VOCABULARY = (
    "about above across act add after again against age ago agree air all almost alone along already also "
    "always among amount and animal answer any appear apply area argue arm around art ask attack author away "
    "back bad bag ball bank base be bear beat beautiful because become bed before begin behind believe best "
    "better between big bill black blood blue board body book born both box boy break bring brother build "
    "business buy call camera campaign can car card care carry case catch cause cell center central century "
    "certain chair chance change character charge check child choice choose church city claim class clear "
    "close coach cold collection college color come common community company compare computer concern "
    "condition consider contain continue control cost could country couple course court cover create crime "
    "cultural culture cup current customer cut dark data daughter day dead deal death debate decade decide "
    "deep defense degree describe design detail determine develop difference different difficult dinner "
    "direction discover discuss disease do doctor dog door down draw dream drive drop during each early east "
    "easy eat economic economy edge effect effort eight either election else employee end energy enjoy "
    "enough enter entire environment evening event ever every evidence exactly example executive exist "
    "expect experience expert explain eye face fact factor fail fall family far fast father fear federal "
    "feel few field fight figure fill film final finally financial find fine finger finish fire firm first "
    "fish five floor fly focus follow food foot force foreign forget form former forward four free friend "
    "from front full fund future game garden gas general generation get girl give glass go goal good green "
    "ground group grow growth guess gun guy hair half hand hang happen happy hard have head health hear heart "
    "heat heavy help here herself high himself history hit hold home hope hospital hot hotel hour house how "
    "however huge human hundred husband idea identify image imagine impact important improve include "
    "increase indeed indicate individual industry information inside instead interest interview into "
    "investment issue item itself job join just keep key kid kill kind kitchen know knowledge land language "
    "large last late later laugh law lawyer lay lead leader learn least leave left leg legal less letter "
    "level life light like likely line list listen little live local long look lose loss lot love low "
    "machine magazine main maintain major majority make manage management manager many market marriage "
    "material matter may maybe mean measure media medical meet meeting member memory mention message method "
    "middle might military million mind minute miss mission model modern moment money month more morning "
    "most mother mouth move movement movie much music must myself name nation national natural nature near "
    "nearly necessary need network never new news next nice night none nor north note nothing notice now "
    "number occur off offer office officer official often oil old once one only onto open operation "
    "opportunity option order organization other others outside over own owner page pain painting paper "
    "parent part participant particular particularly partner party pass past patient pattern pay peace "
    "people per perform performance perhaps period person personal phone physical pick picture piece place "
    "plan plant play player point police policy political politics poor popular population position "
    "positive possible power practice prepare present president pressure pretty prevent price private "
    "probably problem process produce product production professional program project property protect "
    "prove provide public pull purpose push put quality question quickly quite race radio raise range rate "
    "rather reach read ready real reality realize really reason receive recent recently recognize record red "
    "reduce reflect region relate relationship religious remain remember remove report represent require "
    "research resource respond response rest result return reveal rich right rise risk road rock role room "
    "rule run safe same save say scene school science scientist score sea season seat second section "
    "security see seek seem sell send senior sense series serious serve service set seven several shake "
    "share she shoot short shot should shoulder show side sign significant similar simple simply since "
    "sing single sister sit site situation six size skill skin small smile social society soldier some "
    "somebody someone something sometimes son song soon sort sound source south southern space speak "
    "special specific speech spend sport spring staff stage stand standard star start state statement "
    "station stay step still stock stop store story strategy street strong structure student study stuff "
    "style subject success successful such suddenly suffer suggest summer support sure surface system "
    "table take talk task tax teach teacher team technology television tell ten tend term test than thank "
    "that the their them themselves then theory there these they thing think third this those though "
    "thought thousand threat three through throughout throw thus time today together tonight too top total "
    "tough toward town trade traditional training travel treat treatment tree trial trip trouble true truth "
    "try turn two type under understand unit until upon use usually value various very victim view "
    "violence visit voice vote wait walk wall want war watch water way weapon wear week weight well west "
    "western what whatever when where whether which while white whole whom whose why wide wife will win "
    "wind window wish with within without woman wonder word work worker world worry would write writer "
    "wrong yard yeah year yes yet young yourself"
)
_WORDS = tuple(_VOCABULARY.split())


def local_tokens(text: str) -> int:
    """Local tokens of ``text``: ``\\w+|[^\\w\\s]`` matches (the built-in mock's prompt token count)."""
    return len(_TOKEN_RE.findall(text))


class SyntheticText:
    """English-like text of an exact number of local tokens: sentences of 6 to 18 words ending with a period."""

    def __init__(self, words: Sequence[str] = _WORDS) -> None:
        if not words or any(not w.isalpha() for w in words):
            raise ValueError("synthetic text needs a non-empty vocabulary of alphabetic words")
        self.words = tuple(words)

    def text(self, n: int, rng: random.Random) -> str:
        """A text of exactly ``n`` local tokens (``n`` >= 1): words, commas and periods."""
        if n < 1:
            raise ValueError(f"a synthetic text needs at least 1 token, got {n}")
        words = self.words
        out: list[str] = []
        left = n
        sentence = 0
        length = rng.randint(6, 18)
        choice = rng.choice
        while left > 0:
            if left == 1 or sentence < length:
                word = choice(words)
                out.append(word.capitalize() if sentence == 0 else word)
                sentence += 1
                left -= 1
                if 2 < sentence < length - 2 and left > 2 and rng.random() < 0.08:
                    out[-1] += ","
                    left -= 1
            else:
                out[-1] += "."
                left -= 1
                sentence = 0
                length = rng.randint(6, 18)
        return " ".join(out)


@dataclass(frozen=True, slots=True)
class Calibration:
    """``server_tokens ~ overhead + ratio * local_tokens`` for one message; the identity when not fitted."""

    overhead: float = 0.0
    ratio: float = 1.0
    points: tuple[tuple[int, int], ...] = ()
    """The probes it was fitted on: (local tokens sent, server's usage.prompt_tokens)."""

    @classmethod
    def fit(cls, points: Sequence[tuple[int, int]]) -> Calibration:
        """Least-squares line through (local, server) probes; one probe: a ratio through the origin.

        A fit that makes no sense (no points, a ratio <= 0, server counts that do not grow with the text) is
        a ``ValueError`` saying why.
        """
        pts = [(int(x), int(y)) for x, y in points]
        if not pts:
            raise ValueError("calibration needs at least one probe")
        if any(x <= 0 or y <= 0 for x, y in pts):
            raise ValueError(f"calibration probes must have positive token counts, got {pts}")
        xs = {x for x, _ in pts}
        if len(xs) == 1:
            x0 = pts[0][0]
            mean_y = sum(y for _, y in pts) / len(pts)
            return cls(0.0, mean_y / x0, tuple(pts))
        n = len(pts)
        mx = sum(x for x, _ in pts) / n
        my = sum(y for _, y in pts) / n
        sxx = sum((x - mx) ** 2 for x, _ in pts)
        sxy = sum((x - mx) * (y - my) for x, y in pts)
        ratio = sxy / sxx
        if not math.isfinite(ratio) or ratio <= 0:
            raise ValueError(f"the server's prompt token counts do not grow with the text: {pts}")
        overhead = my - ratio * mx
        return cls(max(0.0, overhead), ratio, tuple(pts))

    def predict(self, local: int) -> float:
        """Server tokens expected for one message of ``local`` local tokens."""
        return self.overhead + self.ratio * local

    def local_for(self, target: int, *, with_overhead: bool = True) -> int:
        """Local tokens to write for the server to count about ``target`` (at least 1).

        ``with_overhead``: the message is the whole prompt (the template constant is part of ``target``);
        false for a message added to a longer prompt, or for an answer's length.
        """
        base = target - self.overhead if with_overhead else target
        return max(1, round(base / self.ratio))

    def describe(self) -> str:
        if not self.points:
            return "not calibrated: assuming the server counts \\w+|[^\\w\\s] matches (the mock's rule)"
        probes = ", ".join(f"{x} -> {y}" for x, y in self.points)
        return (
            f"server prompt tokens = {self.overhead:.1f} + {self.ratio:.3f} x local tokens "
            f"(probes local -> usage.prompt_tokens: {probes})"
        )


@dataclass(frozen=True, slots=True)
class LengthDist:
    """A distribution of lengths (tokens) or durations (seconds); see ``parse_dist`` for the specs."""

    kind: str
    a: float
    b: float = 0.0
    lo: float = 0.0
    hi: float = math.inf
    integer: bool = True
    spec: str = ""

    def sample(self, rng: random.Random) -> float:
        """One draw, clipped to [lo, hi]; rounded to an integer (at least 1) for lengths."""
        if self.kind == "fixed":
            v = self.a
        elif self.kind == "uniform":
            v = rng.uniform(self.a, self.b) if not self.integer else rng.randint(int(self.a), int(self.b))
        elif self.kind == "normal":
            v = rng.gauss(self.a, self.b)
        elif self.kind == "lognormal":
            v = self.a * math.exp(rng.gauss(0.0, self.b))
        else:  # exp
            v = rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        v = min(self.hi, max(self.lo, v))
        return float(max(1, round(v))) if self.integer else v

    def sample_int(self, rng: random.Random) -> int:
        return int(self.sample(rng))

    @property
    def mean_hint(self) -> float:
        """About the mean (for sizing, not statistics): the centre parameter of the distribution."""
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        return self.a

    def __str__(self) -> str:
        return self.spec or f"{self.kind}:{self.a:g}"


def _num(text: str, spec: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"expected {what}, got {spec!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"expected {what}, got {spec!r}")
    return v


def parse_dist(spec: object, *, integer: bool = True, minimum: float | None = None) -> LengthDist:
    """A ``LengthDist`` from a spec; ``ValueError`` saying what was expected.

    Specs: ``N`` (fixed), ``uniform:MIN:MAX``, ``normal:MEAN:SD[:MIN:MAX]``, ``lognormal:MEDIAN:SIGMA[:MIN:MAX]``
    (a long right tail, as real prompt and answer lengths have), ``exp:MEAN[:MAX]`` (think times). Lengths
    (``integer``) are at least 1; ``minimum`` (default 1 for lengths, 0 for durations) bounds every parameter.
    """
    text = str(spec).strip().lower()
    what = f"{'a length' if integer else 'a duration'} spec {DIST_SPEC}"
    low = (1.0 if integer else 0.0) if minimum is None else minimum
    parts = text.split(":")
    nums = [_num(p, str(spec), what) for p in parts[1:]] if len(parts) > 1 else []
    if len(parts) == 1:
        v = _num(parts[0], str(spec), what)
        if v < low or (integer and v != int(v)):
            raise ValueError(f"expected {'an integer' if integer else 'a number'} >= {low:g}, got {spec!r}")
        return LengthDist("fixed", v, integer=integer, spec=text)
    kind = parts[0]
    if kind == "fixed" and len(nums) == 1:
        return parse_dist(nums[0] if not integer else int(nums[0]), integer=integer, minimum=minimum)
    if kind == "uniform" and len(nums) == 2:
        a, b = nums
        if a < low or b < a:
            raise ValueError(f"uniform:MIN:MAX needs {low:g} <= MIN <= MAX, got {spec!r}")
        return LengthDist("uniform", a, b, a, b, integer, text)
    if kind in ("normal", "lognormal") and len(nums) in (2, 4):
        centre, spread = nums[0], nums[1]
        lo, hi = (nums[2], nums[3]) if len(nums) == 4 else (low, math.inf)
        if centre <= 0 or spread < 0 or lo < low or hi < lo:
            raise ValueError(f"{kind} needs a centre > 0, a spread >= 0 and {low:g} <= MIN <= MAX, got {spec!r}")
        return LengthDist(kind, centre, spread, lo, hi, integer, text)
    if kind == "exp" and len(nums) in (1, 2):
        mean = nums[0]
        hi = nums[1] if len(nums) == 2 else math.inf
        if mean < 0 or hi < low:
            raise ValueError(f"exp:MEAN[:MAX] needs MEAN >= 0 and MAX >= {low:g}, got {spec!r}")
        return LengthDist("exp", mean, 0.0, low, hi, integer, text)
    raise ValueError(f"expected {what}, got {spec!r}")
