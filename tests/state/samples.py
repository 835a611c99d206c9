"""Values with every field set to something other than its default, built from
the dataclass's own fields, so a field added to `Ticket` later is covered by
the tests that use them without anyone editing those tests."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any


def non_default(tp: Any, default: Any = dataclasses.MISSING, *, seed: int = 7) -> Any:
    """A value of type `tp` that differs from `default`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return non_default(inner, default, seed=seed)
    if origin is frozenset:
        (inner,) = typing.get_args(tp)
        if isinstance(inner, type) and issubclass(inner, enum.Enum):
            value: Any = frozenset(inner)
        else:
            value = frozenset({non_default(inner, seed=seed), non_default(inner, seed=seed + 1)})
    elif tp is bool:
        value = not default if isinstance(default, bool) else True
    elif tp is int:
        value = (default if isinstance(default, int) else 0) + 1_000_003 * seed
    elif tp is bytes:
        value = bytes([seed % 256]) * 32
    elif tp is str:
        value = f"value-{seed}-é"
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        value = [m for m in tp if m != default][-1]
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        value = every_field_set(tp, seed=seed)
    else:
        raise TypeError(f"no sample for {tp!r}: teach tests/state/samples.py")
    assert value != default
    return value


def every_field_set(cls: type[Any], *, seed: int = 1, **given: Any) -> Any:
    """An instance of `cls` with every field not in `given` set to a value other
    than its default (fields without a default get a sample too)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        if f.name in given:
            values[f.name] = given[f.name]
            continue
        default = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        values[f.name] = non_default(hints[f.name], default, seed=seed + i)
    return cls(**values)


def assert_no_default_left(value: Any) -> None:
    for f in dataclasses.fields(value):
        default = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if default is not dataclasses.MISSING:
            assert getattr(value, f.name) != default, f"{f.name} is still its default"
