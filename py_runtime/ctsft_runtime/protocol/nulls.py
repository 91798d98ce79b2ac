"""Refuse an explicit `null` given for an optional field, as the zod schemas do.

The contract's optional fields are absent or a value, never `null` (zod's `.optional()`);
the msgspec bodies spell "optional" as `T | None = None`, which would also take `null`.
Rather than turning every such default into `msgspec.UNSET` (and every `is None` in the
handlers with it), the body is walked once, untyped, against the struct's type info, and a
`null` at a struct field whose type only admits None as "absent" is refused with the field's
path. Elements of lists and dict values are left alone (`[name, null]` may be meaningful),
and so are fields typed `Any` (echo's payload).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec.inspect as mi

__all__ = ["explicit_null"]


def explicit_null(value: Any, typ: type) -> str | None:
    """The dotted path (camelCase, as on the wire) of the first struct field given as `null`
    in the untyped `value` decoded for `typ`, or None when there is none."""
    return _walk(value, _info(typ), "")


@cache
def _info(typ: type) -> mi.Type:
    return mi.type_info(typ)


def _walk(value: Any, info: mi.Type, path: str) -> str | None:
    if isinstance(info, mi.UnionType):
        # The value's shape picks the member(s) to look into; a null in one member that
        # another member would take without one is not a refusal.
        hits = [_walk(value, t, path) for t in info.types if _may_hold(value, t)]
        return hits[0] if hits and all(hits) else None
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        for field in info.fields:
            if field.encode_name not in value:
                continue
            inner, where = value[field.encode_name], f"{path}{field.encode_name}"
            if inner is None:
                if _admits_null(field.type):
                    return where
                continue  # a type without None: msgspec refuses it, with its own message
            if hit := _walk(inner, field.type, f"{where}."):
                return hit
        return None
    if isinstance(info, mi.CollectionType) and isinstance(value, list) and _has_struct(info.item_type):
        for i, item in enumerate(value):
            if hit := _walk(item, info.item_type, f"{path}{i}."):
                return hit
    if isinstance(info, mi.DictType) and isinstance(value, dict) and _has_struct(info.value_type):
        for key, item in value.items():
            if hit := _walk(item, info.value_type, f"{path}{key}."):
                return hit
    return None


def _admits_null(info: mi.Type) -> bool:
    return isinstance(info, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in info.types)


def _may_hold(value: Any, info: mi.Type) -> bool:
    if isinstance(info, (mi.StructType, mi.DictType)):
        return isinstance(value, dict)
    if isinstance(info, mi.CollectionType):
        return isinstance(value, list)
    return False


def _has_struct(info: mi.Type) -> bool:
    if isinstance(info, mi.UnionType):
        return any(_has_struct(t) for t in info.types)
    return isinstance(info, mi.StructType)
