"""Platform presets: the settings that differ between Volcengine Live and BytePlus MediaLive, chosen by one key.

The two platforms share the API (actions, ``Version=2023-01-01``, V4 signing) but not the host, the signing
region, the Title length or the Create/Update rate (API reference section 10). ``platform = "byteplus"`` sets them
together, so an operator does not have to know each one; a key given explicitly (file, env, flag) still wins.
``volcengine`` is the settings' own defaults, so its preset is empty and those keys stay "default".
``relayd config show`` names ``platform=<name>`` as the source of every value the preset supplied.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class PlatformName(StrEnum):
    VOLCENGINE = "volcengine"
    BYTEPLUS = "byteplus"


PRESETS: dict[PlatformName, Mapping[str, Any]] = {
    PlatformName.VOLCENGINE: {},
    # Endpoint and the 10-character Title / 1 QPS Create/Update are documented; the region is what BytePlus's other
    # services sign with and the service name is Volcengine's, both inferred (reference section 10).
    PlatformName.BYTEPLUS: {
        "endpoint": "https://open.byteplusapi.com",
        "region": "ap-singapore-1",
        "service": "live",
        "title_limit": 10,
        "create_update_qps": 1.0,
    },
}


def preset_source(platform: str) -> str:
    """How ``relayd config show`` names a value the preset supplied."""
    return f"platform={platform}"


def preset_values(platform: object) -> Mapping[str, Any]:
    """The preset of a platform name; {} for an unknown name (the ``platform`` field's validation reports it)."""
    try:
        return PRESETS[PlatformName(str(platform).lower())]
    except ValueError:
        return {}


def with_preset(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``values`` with every preset key they do not give filled in, and the names of the keys filled."""
    preset = preset_values(values.get("platform", PlatformName.VOLCENGINE))
    filled = [key for key in preset if values.get(key) is None]
    return {**values, **{key: preset[key] for key in filled}}, filled
