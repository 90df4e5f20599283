"""Typed, ranged configuration values, checked once before any training starts.

A Config field declares what it accepts in its annotation, and nowhere else:

    steps: PositiveInt = 100_000
    lr: PositiveFloat = 3e-4
    gamma: Fraction = 0.99
    kernel: Literal["gaussian", "laplacian"] = "laplacian"
    hidden: Sizes = field(default_factory=lambda: [256, 256])

`check_value` coerces what YAML and `--set` produce (an int for a float field, `1e-4` read as a
string by YAML 1.1) and raises `ConfigError` naming the key, the value and what is allowed. Every
float must be finite unless its range says otherwise. The same checks serve profile values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from benchmark.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Bounds of a number (or of each element of a list of numbers)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    allow_inf: bool = False
    min_len: int = 0
    """For lists: the fewest elements allowed."""

    def describe(self) -> str:
        parts = []
        if self.gt is not None:
            parts.append(f"> {self.gt:g}")
        if self.ge is not None:
            parts.append(f">= {self.ge:g}")
        if self.lt is not None:
            parts.append(f"< {self.lt:g}")
        if self.le is not None:
            parts.append(f"<= {self.le:g}")
        return " and ".join(parts) or "finite"

    def holds(self, x: float) -> bool:
        if math.isnan(x) or (math.isinf(x) and not self.allow_inf):
            return False
        return not (
            (self.gt is not None and not x > self.gt)
            or (self.ge is not None and not x >= self.ge)
            or (self.lt is not None and not x < self.lt)
            or (self.le is not None and not x <= self.le)
        )


PositiveInt = Annotated[int, Range(gt=0)]
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
Fraction = Annotated[float, Range(ge=0, le=1)]
"""A probability, discount, expectile, Polyak rate or other value in [0, 1]."""
Sizes = Annotated[list[int], Range(gt=0, min_len=1)]
"""Hidden-layer widths: a non-empty list of positive ints."""


def _fail(where: str, key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{where}: {key}={value!r} is not allowed; {key} must be {allowed}")


def _split(hint: Any) -> tuple[Any, Range | None]:
    if typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        found = [e for e in extras if isinstance(e, Range)]
        return base, (found[0] if found else None)
    return hint, None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):  # YAML 1.1 reads `1e-4` (no dot) as a string
        with contextlib.suppress(ValueError):
            return float(value)
    return None


def _scalar(base: Any, value: Any, bounds: Range | None, where: str, key: str) -> Any:
    if base is bool:
        if not isinstance(value, bool):
            raise _fail(where, key, value, "true or false")
        return value
    if base is int:
        number = _as_float(value) if not isinstance(value, str) else None
        if number is None or not number.is_integer():
            raise _fail(where, key, value, "an integer" + _bounds_text(bounds))
        value = int(number)
    elif base is float:
        number = _as_float(value)
        if number is None:
            raise _fail(where, key, value, "a number" + _bounds_text(bounds))
        value = number
    elif base is str:
        if not isinstance(value, str):
            raise _fail(where, key, value, "a string")
        return value
    else:
        return value
    if not (bounds or Range()).holds(float(value)):
        kind = "an integer" if base is int else "a number"
        raise _fail(where, key, value, f"{kind} {(bounds or Range()).describe()}")
    return value


def _bounds_text(bounds: Range | None) -> str:
    return f" {bounds.describe()}" if bounds else ""


def check_value(hint: Any, value: Any, where: str, key: str) -> Any:
    """`value` coerced to `hint`, or a ConfigError naming key, value and the allowed values."""
    base, bounds = _split(hint)
    origin = typing.get_origin(base)
    if origin is Literal:
        choices = typing.get_args(base)
        if value not in choices:
            raise _fail(where, key, value, f"one of {list(choices)}")
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(base)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return check_value(
                    Annotated[option, bounds] if bounds else option, value, where, key
                )
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _fail(where, key, value, "a list")
        if bounds and len(value) < bounds.min_len:
            raise _fail(where, key, value, f"a list of at least {bounds.min_len} element(s)")
        (element,) = typing.get_args(base)[:1] or (Any,)
        element_bounds = dataclasses.replace(bounds, min_len=0) if bounds else None
        hint = Annotated[element, element_bounds] if element_bounds else element
        return [check_value(hint, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
    return _scalar(base, value, bounds, where, key)


def field_hints(config_cls: type) -> dict[str, Any]:
    """The resolved annotations of a Config dataclass's fields, Annotated metadata kept (class
    attributes such as `ID_NEUTRAL_DEFAULTS` are annotated too, but are not config keys)."""
    hints = typing.get_type_hints(config_cls, include_extras=True)
    if not dataclasses.is_dataclass(config_cls):
        return hints
    fields = {f.name for f in dataclasses.fields(config_cls)}
    return {name: hint for name, hint in hints.items() if name in fields}


def check_config(config_cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Every value of a resolved config checked and coerced against its field's annotation."""
    hints = field_hints(config_cls)
    return {key: check_value(hints[key], value, where, key) for key, value in values.items()}


def choices(config_cls: type, name: str) -> tuple[Any, ...]:
    """The allowed values of a `Literal` field (for docs and error messages)."""
    base, _ = _split(field_hints(config_cls)[name])
    return typing.get_args(base) if typing.get_origin(base) is Literal else ()
