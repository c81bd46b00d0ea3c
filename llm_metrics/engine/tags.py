"""Series keys of the metric store (``store``): a metric name plus a tag set.

Tags are a sorted tuple of ``(key, value)`` string pairs (``make_tags``); tags with an empty or None value are
left out, so a call without a prompt tag simply has no ``prompt`` tag. A metric has one ``Kind`` for the life
of a store. ``flat_tags``/``unflat_tags`` are the tags' form on the wire (a flat list of strings). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

__all__ = ["OTHER", "Kind", "Tags", "TagsLike", "flat_tags", "make_tags", "tags_dict", "tags_match", "unflat_tags"]

Tags = tuple[tuple[str, str], ...]
TagsLike = Mapping[str, object] | Tags
Kind = Literal["trend", "counter", "rate"]

OTHER = "__other__"
"""The tag value of the series that collects the tag sets beyond a store's bound."""


def make_tags(tags: TagsLike | Iterable[tuple[str, object]] | None) -> Tags:
    """Normalise tags: sorted ``(key, value)`` str pairs, None and empty values left out."""
    if not tags:
        return ()
    items = tags.items() if isinstance(tags, Mapping) else tags
    return tuple(sorted((str(k), str(v)) for k, v in items if v is not None and v != ""))


def tags_dict(tags: Tags) -> dict[str, str]:
    return dict(tags)


def tags_match(tags: Tags, filt: Tags) -> bool:
    """True when every ``(key, value)`` of ``filt`` is among ``tags``."""
    return all(pair in tags for pair in filt)


def flat_tags(tags: Tags) -> list[str]:
    """``(("a", "1"), ("b", "2"))`` -> ``["a", "1", "b", "2"]``."""
    out: list[str] = []
    for k, v in tags:
        out.append(k)
        out.append(v)
    return out


def unflat_tags(flat: Any) -> Tags:
    """The inverse of ``flat_tags``; ValueError when ``flat`` is not a list of pairs."""
    if not isinstance(flat, list | tuple) or len(flat) % 2:
        raise ValueError(f"metric wire: tags must be a flat list of key, value strings, got {flat!r:.80}")
    return tuple(sorted((str(flat[i]), str(flat[i + 1])) for i in range(0, len(flat), 2)))
