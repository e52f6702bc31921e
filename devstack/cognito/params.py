"""Request parameter checks with Cognito's InvalidParameterException answers."""

from typing import Any, Dict, Optional

from .errors import invalid_parameter


def _missing(name: str) -> Exception:
    return invalid_parameter(
        "1 validation error detected: Value null at '%s' failed to satisfy constraint: "
        "Member must not be null" % (name[:1].lower() + name[1:]))


def string(params: Dict[str, Any], name: str, required: bool = True) -> Optional[str]:
    value = params.get(name)
    if value is None:
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str):
        raise invalid_parameter("%s must be a string." % name)
    if required and not value:
        raise _missing(name)
    return value


def integer(params: Dict[str, Any], name: str, low: int, high: int,
            default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid_parameter(
            "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: "
            "Member must have value between %d and %d" % (value, name, low, high))
    return value


def string_map(params: Dict[str, Any], name: str) -> Dict[str, str]:
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise invalid_parameter("%s must be a map of strings to strings." % name)
    return dict(value)


def attribute_list(params: Dict[str, Any], name: str) -> Dict[str, str]:
    """``[{"Name": ..., "Value": ...}]`` -> dict (later entries win, as on AWS)."""
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, list):
        raise invalid_parameter("%s must be a list of attributes." % name)
    result = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str) or not item["Name"]:
            raise invalid_parameter("Each of %s needs a Name." % name)
        attr_value = item.get("Value", "")
        if not isinstance(attr_value, str):
            raise invalid_parameter("The value of attribute %s must be a string." % item["Name"])
        result[item["Name"]] = attr_value
    return result


def string_list(params: Dict[str, Any], name: str) -> Optional[list]:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_parameter("%s must be a list of strings." % name)
    return value
