"""PHP `http_build_query` for batch commands (`method?filter%5B%3EID%5D=5&select%5B0%5D=ID`).

The portal parses each batch command with PHP's `parse_str`, so we encode exactly as PHP's
`http_build_query($params)` does (PHP_QUERY_RFC1738, the default):
- nested maps become `a[b][c]=v`, lists `a[0]=x&a[1]=y` (keys are percent-encoded, brackets included);
- strings are UTF-8 percent-encoded, space as `+`; only `A-Za-z0-9-_.` stay literal;
- `True` -> `1`, `False` -> `0`; `None` is skipped, and so is an empty list/map (PHP emits nothing);
- numbers as their shortest decimal text; `Decimal` as is; dates/datetimes in ISO 8601 (Bitrix accepts it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus

# PHP's urlencode leaves only alphanumerics and "-_." unescaped; Python's quote_plus also keeps "~".
_SAFE = ""


def php_urlencode(text: str) -> str:
    """PHP `urlencode`: UTF-8 percent-encoding with `+` for space and `~` escaped as `%7E`."""
    return quote_plus(text, safe=_SAFE, encoding="utf-8").replace("~", "%7E")


def php_scalar(value: Any) -> str:
    """The text PHP puts on the wire for a scalar parameter value."""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"cannot encode {value!r} as a Bitrix24 parameter")
        # PHP (serialize_precision=-1) prints the shortest round-trip form; integral floats lose ".0".
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, Decimal, str)):
        return str(value)
    raise TypeError(f"cannot encode a {type(value).__name__} as a Bitrix24 parameter")


def _pairs(value: Any, prefix: str):
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _pairs(item, f"{prefix}[{key}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _pairs(item, f"{prefix}[{index}]")
    else:
        yield prefix, php_scalar(value)


def http_build_query(params: Mapping[str, Any] | None) -> str:
    """Encode `params` exactly like PHP's `http_build_query($params)`."""
    if not params:
        return ""
    parts = []
    for key, value in params.items():
        for name, text in _pairs(value, str(key)):
            parts.append(f"{php_urlencode(name)}={php_urlencode(text)}")
    return "&".join(parts)


def batch_command(method: str, params: Mapping[str, Any] | None = None) -> str:
    """One `batch` command string: `method?query` (just `method` without parameters)."""
    query = http_build_query(params)
    return f"{method}?{query}" if query else method
