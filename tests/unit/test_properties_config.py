"""Bad input everywhere a user types, property-based: any YAML-ish data (and any bytes in a file) given to a
config loader either loads or raises that loader's documented error, whose message starts with the source
(the file path or the name given) and says what is wrong. No other exception, ever.

Two kinds of input: arbitrary data (nested mappings, lists and scalars, keys from the loader's vocabulary
mixed with odd ones: integers, null, booleans, as YAML allows), and the shipped configuration files with one
part replaced, removed or added (so that the search also reaches the deep keys). Files get arbitrary bytes too.

The loaders: the mock's settings (``mock_llm.config``), the thresholds (``parse_thresholds`` and
``slo_config.load_slo_file``), ``conf/gateway.yaml``, the load profiles (``shapes.config``), the sidecar's settings
and trade prompts, the chat prompt sets and datasets.
"""

from __future__ import annotations

import copy
import json
import math
import string
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_metrics.engine.thresholds import ThresholdError, default_registry, parse_thresholds
from llm_metrics.slo_config import ConfigError as SloFileError
from llm_metrics.slo_config import load_slo_file
from llm_users.common.prompts import PromptError, load_dataset, load_prompt_sets
from llm_users.gateway.config import GatewayConfigError, load_gateway_config, parse_gateway_config
from llm_users.sidecar.config import SidecarConfigError, load_sidecar_config
from llm_users.sidecar.prompts import PromptFileError, load_trade_prompts
from llm_users.sidecar.server_metrics import ServerMetricsError, parse_server_metrics
from mock_llm.config import ConfigError as MockConfigError
from mock_llm.config import from_mapping, load_yaml
from shapes.config import ShapeConfigError, load_profiles, parse_profiles

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


BASES: dict[str, Any] = {
    "mock": _yaml(ROOT / "mock_llm" / "default.yaml"),
    "gateway": _yaml(CONF / "gateway.yaml"),
    "shapes": _yaml(CONF / "shapes.yaml"),
    "sidecar": _yaml(CONF / "sidecar.yaml"),
    "prompts": _yaml(CONF / "prompts.yaml"),
    "trade": json.loads((CONF / "prompts.json").read_text(encoding="utf-8")),
    "thresholds": _yaml(CONF / "thresholds" / "gateway.yaml"),
}


def _vocabulary(data: Any, out: set[str]) -> set[str]:
    if isinstance(data, dict):
        for k, v in data.items():
            out.add(str(k))
            _vocabulary(v, out)
    elif isinstance(data, list):
        for v in data:
            _vocabulary(v, out)
    return out


VOCABULARY = sorted(_vocabulary(BASES, set()) | {"thresholds", "threshold", "abortOnFail", "delayAbortEval"})

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["p(95)<1000", "rate<0.02", "200-399", "429", "/health", "10s", "1m", "", " ", "-1"])
)
keys = st.sampled_from(VOCABULARY) | st.text(max_size=8) | st.integers(-3, 3) | st.none() | st.booleans()
yamlish = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=16
)


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one part replaced by arbitrary data, removed, or a key added."""
    data = copy.deepcopy(base)
    holder: Any = None
    key: Any = None
    node = data
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        holder = node
        key = (
            draw(st.sampled_from(sorted(node, key=str)))
            if isinstance(node, dict)
            else draw(st.integers(0, len(node) - 1))
        )
        node = node[key]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if holder is None:
        return draw(yamlish) if action == "replace" else data
    if action == "replace":
        holder[key] = draw(yamlish)
    elif action == "remove":
        del holder[key]
    elif isinstance(node, dict):
        node[draw(keys)] = draw(yamlish)
    else:
        holder[key] = draw(yamlish)
    return data


def file_texts(base: Any) -> st.SearchStrategy[bytes]:
    """What a file may hold: YAML of arbitrary or mutated data, JSON of it, or arbitrary bytes."""

    def dump(data: Any) -> bytes:
        try:
            return yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass")
        except (yaml.YAMLError, ValueError):
            return b"{"

    def as_json(data: Any) -> bytes:
        try:
            return json.dumps(data).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError):
            return b"["

    data = yamlish | mutated(base)
    return (
        data.map(dump)
        | data.map(as_json)
        | st.binary(max_size=200)
        | st.sampled_from([b"", b"\xff\xfe", b"[" * 1000, b"{" * 1000, b"\t- x\n", b"key: value\nkey: again\n"])
    )


def expect(fn: Callable[[], Any], error: type[Exception], source: str) -> None:
    """``fn()`` loads, or raises ``error`` whose message names ``source`` first and then says something.

    This is the robustness half (never another exception); the other half, that bad input is refused and
    not loaded, is ``test_an_unknown_key_is_refused_by_every_loader`` below."""
    try:
        fn()
    except error as exc:
        message = str(exc)
        assert message.startswith(f"{source}: "), message
        assert len(message) > len(source) + 4, message


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def write(scratch: Path, name: str, content: bytes) -> Path:
    p = scratch / name
    p.write_bytes(content)
    return p


# -- mappings given directly ----------------------------------------------------------------------------------


@EXAMPLES
@given(yamlish | mutated(BASES["mock"]))
def test_mock_settings(data: Any) -> None:
    expect(lambda: from_mapping(data, "conf.yaml"), MockConfigError, "conf.yaml")


@EXAMPLES
@given(yamlish | mutated(BASES["thresholds"]["thresholds"]), st.booleans())
def test_thresholds(data: Any, fail_on_no_data: bool) -> None:
    expect(
        lambda: parse_thresholds(data, "th.yaml", registry=default_registry(), fail_on_no_data=fail_on_no_data),
        ThresholdError,
        "th.yaml",
    )


@EXAMPLES
@given(yamlish | mutated(BASES["gateway"]))
def test_gateway_config(data: Any) -> None:
    expect(lambda: parse_gateway_config(data, "g.yaml"), GatewayConfigError, "g.yaml")


@EXAMPLES
@given(yamlish | mutated(BASES["shapes"]))
def test_load_profiles(data: Any) -> None:
    expect(lambda: parse_profiles(data, "stages.yaml"), ShapeConfigError, "stages.yaml")


@EXAMPLES
@given(yamlish | mutated(BASES["sidecar"]["server_metrics"]))
def test_server_metrics(data: Any) -> None:
    expect(lambda: parse_server_metrics(data, "sidecar.yaml"), ServerMetricsError, "sidecar.yaml")


# -- files ------------------------------------------------------------------------------------------------------


@EXAMPLES
@given(file_texts(BASES["mock"]))
def test_mock_settings_file(scratch: Path, content: bytes) -> None:
    path = write(scratch, "mock.yaml", content)
    expect(lambda: from_mapping(load_yaml(path), str(path)), MockConfigError, str(path))


@EXAMPLES
@given(file_texts(BASES["thresholds"]))
def test_thresholds_file(scratch: Path, content: bytes) -> None:
    path = write(scratch, "th.yaml", content)
    try:
        load_slo_file(path, default_registry())
    except (SloFileError, ThresholdError) as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)


@EXAMPLES
@given(file_texts(BASES["gateway"]))
def test_gateway_config_file(scratch: Path, content: bytes) -> None:
    path = write(scratch, "gateway.yaml", content)
    expect(lambda: load_gateway_config(path), GatewayConfigError, str(path))


@EXAMPLES
@given(file_texts(BASES["shapes"]))
def test_profiles_file(scratch: Path, content: bytes) -> None:
    path = write(scratch, "shapes.yaml", content)
    expect(lambda: load_profiles(path), ShapeConfigError, str(path))


@EXAMPLES
@given(file_texts(BASES["sidecar"]))
def test_sidecar_settings_file(scratch: Path, content: bytes) -> None:
    path = write(scratch, "sidecar.yaml", content)
    expect(lambda: load_sidecar_config(path), SidecarConfigError, str(path))


@EXAMPLES
@given(file_texts(BASES["trade"]))
def test_trade_prompts_file(scratch: Path, content: bytes) -> None:
    path = write(scratch, "prompts.json", content)
    expect(lambda: load_trade_prompts(path), PromptFileError, str(path))


@EXAMPLES
@given(file_texts(BASES["prompts"]))
def test_prompt_sets_file(scratch: Path, content: bytes) -> None:
    path = write(scratch, "prompts.yaml", content)
    expect(lambda: load_prompt_sets(path), PromptError, str(path))


@EXAMPLES
@given(
    file_texts(BASES["trade"]) | st.lists(yamlish, max_size=4).map(lambda xs: "\n".join(map(json.dumps, xs)).encode())
)
def test_dataset_file(scratch: Path, content: bytes) -> None:
    path = write(scratch, "data.jsonl", content)
    expect(lambda: load_dataset(path), PromptError, str(path))


def test_nan_and_infinity_are_never_accepted_as_durations_or_rates() -> None:
    """The floats YAML reads from .nan and .inf: refused where a finite number is needed."""
    for bad in (math.nan, math.inf):
        with pytest.raises(ShapeConfigError):
            parse_profiles({"profiles": {"p": {"stages": [{"duration": bad, "target": 1}]}}}, "s.yaml")
        with pytest.raises(MockConfigError):
            from_mapping({"ttft_ms": bad}, "m.yaml")


# -- bad input is refused, not loaded ------------------------------------------------------------------------

# (loader of a file, its shipped content): each refuses a top-level key it does not know
FILE_LOADERS: dict[str, tuple[Callable[[Path], Any], Any]] = {
    "mock": (lambda p: from_mapping(load_yaml(p), str(p)), BASES["mock"]),
    "thresholds": (lambda p: load_slo_file(p, default_registry()), BASES["thresholds"]),
    "gateway": (load_gateway_config, BASES["gateway"]),
    "shapes": (load_profiles, BASES["shapes"]),
    "sidecar": (load_sidecar_config, BASES["sidecar"]),
    "prompts": (load_prompt_sets, BASES["prompts"]),
}


@pytest.mark.parametrize("name", sorted(FILE_LOADERS))
def test_the_shipped_file_loads(scratch: Path, name: str) -> None:
    """The positive control of the refusal property: the unchanged file is accepted."""
    loader, base = FILE_LOADERS[name]
    loader(write(scratch, f"{name}-ok.yaml", yaml.safe_dump(base).encode()))


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(FILE_LOADERS)),
    key=st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=8),
    value=yamlish.filter(lambda v: v is not None),
)
def test_an_unknown_key_is_refused_by_every_loader(scratch: Path, name: str, key: str, value: Any) -> None:
    """A misspelt or unknown top-level key never loads silently: the error names the file and the key.
    (A null value is left out: in the mock's settings null means "restore the default", documented.)"""
    loader, base = FILE_LOADERS[name]
    bad_key = f"zz{key}"  # no loader knows a key starting with zz
    path = write(scratch, f"{name}-bad.yaml", yaml.safe_dump({**base, bad_key: value}, allow_unicode=True).encode())
    with pytest.raises(ValueError) as err:
        loader(path)
    assert str(err.value).startswith(f"{path}: "), str(err.value)
    assert repr(bad_key) in str(err.value) or bad_key in str(err.value), str(err.value)


# -- the messages of the errors these properties found (exact) --------------------------------------------------

DEEP = b"[" * 1000
NOT_UTF8 = b"\xff\xfe"


@pytest.mark.parametrize(
    ("loader", "content", "message"),
    [
        (lambda p: from_mapping(load_yaml(p), str(p)), DEEP, "{p}: not valid YAML: nesting too deep"),
        (lambda p: from_mapping(load_yaml(p), str(p)), NOT_UTF8, "{p}: not UTF-8 text (byte 0)"),
        (lambda p: load_slo_file(p, default_registry()), DEEP, "{p}: not valid YAML: nesting too deep"),
        (lambda p: load_slo_file(p, default_registry()), NOT_UTF8, "{p}: not UTF-8 text (byte 0)"),
        (
            lambda p: load_slo_file(p, default_registry()),
            b"1: x\nthresholds: {}\n",
            "{p}: 1: unknown key (expected thresholds, goodput, fail_on_no_data, saturation)",
        ),
        (load_gateway_config, DEEP, "{p}: not valid YAML: nesting too deep"),
        (load_profiles, DEEP, "{p}: not valid YAML: nesting too deep"),
        (load_sidecar_config, DEEP, "{p}: not valid YAML: nesting too deep"),
        (
            load_sidecar_config,
            b"generate: {1: x, prompt: p}\n",
            "{p}: generate.1: unknown key (expected prompt, max_tokens)",
        ),
        (
            load_sidecar_config,
            b"server_metrics: {null: 1}\n",
            "{p}: server_metrics.None: unknown key (expected path, interval_s, timeout_s, series)",
        ),
        (load_trade_prompts, b"[" * 3000, "{p}: not valid JSON: nesting too deep"),
        (load_prompt_sets, DEEP, "{p}: not valid YAML: nesting too deep"),
        (load_prompt_sets, NOT_UTF8, "{p}: not UTF-8 text (byte 0)"),
        (load_prompt_sets, b"prompts: {a: {prompt: x}}\n1: x\n", "{p}: 1: unknown key (expected: prompts)"),
        (
            load_prompt_sets,
            b"prompts: {a: {messages: [{content: x, role: [1]}]}}\n",
            "{p}: prompts.a.messages[0].role: expected one of ['assistant', 'system', 'user'], got [1]",
        ),
        (load_dataset, NOT_UTF8, "{p}: not UTF-8 text (byte 0)"),
        (load_dataset, b"[" * 3000, "{p}: not valid JSON: nesting too deep"),
        (load_dataset, b'"x"\n' + b"[" * 3000, "{p}: line 2: not valid JSON: nesting too deep"),
    ],
)
def test_error_messages(scratch: Path, loader: Callable[[Path], Any], content: bytes, message: str) -> None:
    path = write(scratch, "input", content)
    with pytest.raises(ValueError) as err:
        loader(path)
    assert str(err.value) == message.format(p=path)


def test_a_source_unit_that_is_not_a_string_is_refused_by_name() -> None:
    with pytest.raises(GatewayConfigError) as err:
        parse_gateway_config({"metrics": {"gateway_latency": {"header": "x-overhead", "unit": [1]}}}, "g.yaml")
    assert str(err.value) == "g.yaml: metrics.gateway_latency.unit: expected ms or s, got [1]"
