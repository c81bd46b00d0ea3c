"""YAML for configuration files: safe loading that refuses a duplicate mapping key (pure, no Locust).

PyYAML keeps the last of two equal keys without a word, so a thresholds file with ``gateway_latency:`` twice
would silently drop the first list of thresholds. ``UniqueKeyLoader`` raises instead, naming the key and
its line (``duplicate key 'gateway_latency'`` ... ``line 4, column 3``).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml

__all__ = ["UniqueKeyLoader", "safe_load_unique"]


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def safe_load_unique(text: str) -> Any:
    """``yaml.safe_load`` that raises ``yaml.YAMLError`` on a duplicate mapping key."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
