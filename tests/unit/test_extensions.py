"""The catalogue of the metrics core's extension points (llm_metrics.extensions)."""

import ast
import inspect

from llm_metrics import extensions
from llm_metrics.extensions import Extensions

POINTS = (
    "before_verdict",
    "verdict",
    "trust_checks",
    "no_data_needs",
    "json_sections",
    "text_sections",
    "after_summary",
    "secret_sources",
    "on_reset",
)


def _declared() -> dict[str, str | None]:
    """Each attribute annotated in the class body, with the docstring right under it (None: none)."""
    body = ast.parse(inspect.getsource(extensions)).body
    cls = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == "Extensions")
    out: dict[str, str | None] = {}
    for node, after in zip(cls.body, [*cls.body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc = None
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                doc = str(after.value.value)
            out[node.target.id] = doc
    return out


def test_every_extension_point_is_declared_typed_with_a_docstring() -> None:
    declared = _declared()
    assert tuple(declared) == POINTS
    assert all(doc for doc in declared.values()), [k for k, v in declared.items() if not v]


def test_every_point_starts_empty_and_is_not_shared_between_instances() -> None:
    a, b = Extensions(), Extensions()
    for name in POINTS:
        value = getattr(a, name)
        assert value is None if name == "verdict" else value == type(value)(), name
        if name != "verdict":
            assert value is not getattr(b, name), name
    a.text_sections.append(lambda: "x")
    assert b.text_sections == []


def test_the_metrics_core_offers_every_point() -> None:
    from llm_metrics.core import LLMMetrics

    assert issubclass(LLMMetrics, Extensions)
