"""The runtime's msgspec bodies agree with the contract generated from the zod schemas.

docs/contract.json (written by `npx tsx scripts/contract.ts` from src/schema) holds a JSON
Schema per op. From each request schema this test derives cases whose verdict is known by
construction — valid: the minimal body, the minimal body plus each optional field, every
form of a union, the op's documented example; invalid: each field with a value of the wrong
type (an unknown enum member too), an unknown extra field, each required field missing, the
same inside nested objects — and checks that decoding the msgpack body with the op's body
struct (`decode_body(raw, OPS[op].body_type)`, exactly what the server does) accepts and
refuses the same ones. When `jsonschema` is installed, the verdicts are also checked against
the JSON Schema itself.

Also derived: each optional field given as `null` (refused unless its schema admits null),
and, in a union of strict forms such as `train`'s methods, each field of another form.

Not compared, because the runtime checks it after decoding (with the same `bad_request`): a
`DataRef` naming exactly one of handle/path/nusax.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ctsft_runtime.errors import BadRequest
from ctsft_runtime.ops import OPS
from ctsft_runtime.protocol.codec import decode_body
from ctsft_runtime.server import control, jobs

CONTRACT = json.loads((Path(__file__).resolve().parents[3] / "docs" / "contract.json").read_text())
DEFS: dict[str, Any] = CONTRACT["$defs"]

# Ops the runtime serves itself (not through the op registry), and the struct each decodes with.
CONTROL_BODIES: dict[str, type] = {
    "status": control.Empty,
    "jobs.list": control.Empty,
    "shutdown": control.Empty,
    "cancel": control.CancelBody,
    "jobs.attach": jobs.AttachBody,
}


def resolve(s: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in s:
        s = DEFS[s["$ref"].rsplit("/", 1)[1]]
    return s


def alternatives(s: dict[str, Any]) -> list[dict[str, Any]] | None:
    alts = s.get("anyOf", s.get("oneOf"))
    return [resolve(a) for a in alts] if alts is not None else None


def is_object(s: dict[str, Any]) -> bool:
    return s.get("type") == "object" and "properties" in s


def valid(s: dict[str, Any]) -> Any:
    """A minimal value the schema accepts."""
    s = resolve(s)
    if "const" in s:
        return s["const"]
    if "enum" in s:
        return s["enum"][0]
    alts = alternatives(s)
    if alts is not None:
        return valid(alts[0])
    t = s.get("type")
    if t == "string":
        return "x" * max(1, s.get("minLength", 1))
    if t in ("integer", "number"):
        v: float = 1
        if "minimum" in s:
            v = max(v, s["minimum"]) if s["minimum"] > 0 else s["minimum"]
        if "exclusiveMinimum" in s:
            v = max(v, s["exclusiveMinimum"] + 1)
        if "maximum" in s and v > s["maximum"]:
            v = s["maximum"] if t == "integer" else s["maximum"] / 2
        return int(v) if t == "integer" else float(v)
    if t == "boolean":
        return True
    if t == "array":
        if "prefixItems" in s:
            return [valid(p) for p in s["prefixItems"]]
        return [valid(s.get("items", {}))] * max(1, s.get("minItems", 1))
    if t == "object":
        if "properties" in s:
            return {k: valid(s["properties"][k]) for k in s.get("required", [])}
        extra = s.get("additionalProperties")
        return {"k": valid(extra)} if isinstance(extra, dict) else {}
    return "x"  # any


_SAMPLES: list[tuple[str, Any]] = [
    ("string", "x"),
    ("integer", 12345),
    ("boolean", True),
    ("array", []),
    ("object", {}),
]


def _accepts_type(s: dict[str, Any], kind: str) -> bool:
    s = resolve(s)
    alts = alternatives(s)
    if alts is not None:
        return any(_accepts_type(a, kind) for a in alts)
    if "const" in s or "enum" in s:
        values = [s["const"]] if "const" in s else s["enum"]
        py = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict, "null": type(None)}[kind]
        return any(type(v) is py for v in values)
    t = s.get("type")
    if t is None:
        return True  # any
    if isinstance(t, list):
        return kind in t or (kind == "integer" and "number" in t)
    return t == kind or (t == "number" and kind == "integer")


def wrong(s: dict[str, Any]) -> list[Any]:
    """Values of a type the schema refuses (none for `any`)."""
    s = resolve(s)
    out = [v for kind, v in _SAMPLES if not _accepts_type(s, kind)][:2]
    if "enum" in s and all(isinstance(v, str) for v in s["enum"]):
        out.append("not-a-member")
    if s.get("type") == "integer":
        out.append(1.5)
    return out + out_of_bounds(s)


def out_of_bounds(s: dict[str, Any]) -> list[Any]:
    """Values of the right type just outside the schema's bounds: the runtime must refuse
    them while decoding, as the SDK does, not somewhere later in the op."""
    s = resolve(s)
    step = 1 if s.get("type") == "integer" else 0.5
    out: list[Any] = []
    if "minimum" in s:
        out.append(s["minimum"] - step)
    if "exclusiveMinimum" in s:
        out.append(s["exclusiveMinimum"])
    if "maximum" in s:
        out.append(s["maximum"] + step)
    if "exclusiveMaximum" in s:
        out.append(s["exclusiveMaximum"])
    if s.get("minLength", 0) > 0:
        out.append("x" * (s["minLength"] - 1))
    if s.get("minItems", 0) > 0 and s.get("type") == "array":
        out.append([])
    return out


Case = tuple[str, Any, bool]  # name, body, accepted


def cases_for_object(
    s: dict[str, Any], base: dict[str, Any], where: str, *, missing: bool = True, always: set[str] | None = None
) -> list[Case]:
    """Cases around one object schema and `base`, a minimal valid instance of it. `always`:
    the fields whose absence no other form of the union accepts (default: its required)."""
    props: dict[str, Any] = s["properties"]
    required = s.get("required", [])
    out: list[Case] = [(f"{where}minimal", base, True)]
    for name, p in props.items():
        if name not in required:
            out.append((f"{where}{name} valid", {**base, name: valid(p)}, True))
            # zod's optional fields are absent or a value: `null` is a wrong value there too
            out.append((f"{where}{name}=null", {**base, name: None}, _accepts_type(p, "null")))
        for w in wrong(p):
            out.append((f"{where}{name}={w!r}", {**base, name: w}, False))
        # nested objects: the same cases one level down
        rp = resolve(p)
        nested = [a for a in (alternatives(rp) or [rp]) if is_object(a)]
        union = alternatives(rp) is not None
        for alt in nested:
            inner = valid(alt)
            for cname, body, ok in cases_for_object(alt, inner, f"{where}{name}.", missing=not union):
                out.append((cname, {**base, name: body}, ok))
        if rp.get("type") == "array" and "items" in rp:
            item = resolve(rp["items"])
            for alt in [a for a in (alternatives(item) or [item]) if is_object(a)]:
                inner = cases_for_object(alt, valid(alt), f"{where}{name}[0].", missing=alternatives(item) is None)
                out += [(cname, {**base, name: [body]}, ok) for cname, body, ok in inner]
    if s.get("additionalProperties") is False:
        out.append((f"{where}unknown field", {**base, "notAField": 1}, False))
    if missing:
        for name in required if always is None else [r for r in required if r in always]:
            out.append((f"{where}{name} missing", {k: v for k, v in base.items() if k != name}, False))
    return out


def cases(schema: dict[str, Any]) -> list[Case]:
    s = resolve(schema)
    alts = alternatives(s)
    forms = alts if alts is not None else [s]
    # Without a field one form requires, the body may still be another form (train without
    # `method` is `full`): only fields every form requires are "missing" cases.
    always = set.intersection(*(set(f.get("required", [])) for f in forms))
    out: list[Case] = []
    for i, form in enumerate(forms):
        prefix = f"form {i + 1}: " if alts is not None else ""
        base = valid(form)
        out += [(prefix + n, b, ok) for n, b, ok in cases_for_object(form, base, "", always=always)]
        # A strict form refuses the options of the other forms (train's `mask` with `full`).
        if form.get("additionalProperties") is False and alts is not None:
            others = {k: p for f in forms if f is not form for k, p in f.get("properties", {}).items()}
            for name, p in others.items():
                if name not in form["properties"]:
                    out.append((f"{prefix}{name} from another form", {**base, name: valid(p)}, False))
    return out


def required_everywhere(schema: dict[str, Any]) -> bool:
    s = resolve(schema)
    return all(f.get("required") for f in (alternatives(s) or [s]))


def decodes(body: Any, typ: type) -> bool:
    try:
        decode_body(msgspec.Raw(msgspec.msgpack.encode(body)), typ)
    except BadRequest:
        return False
    return True


def body_type(name: str) -> type:
    return CONTROL_BODIES[name] if name in CONTROL_BODIES else OPS[name].body_type


ALL = {**CONTRACT["ops"], **CONTRACT["control"]}


def test_op_names_match():
    assert set(CONTRACT["ops"]) == set(OPS), "ops in src/schema/ops.ts OPS vs py_runtime ops registry"
    assert set(CONTRACT["control"]) == set(CONTROL_BODIES)


@pytest.mark.parametrize("op", sorted(ALL))
def test_body_struct_agrees_with_contract(op: str):
    typ = body_type(op)
    generated = cases(ALL[op]["request"])
    assert generated
    disagree = [
        f"{name}: body {json.dumps(body)} should be {'accepted' if ok else 'refused'}"
        for name, body, ok in generated
        if decodes(body, typ) != ok
    ]
    assert not disagree, f"{op}: msgspec {typ.__name__} disagrees with docs/contract.json:\n" + "\n".join(disagree)


@pytest.mark.parametrize("op", sorted(ALL))
def test_documented_example_decodes(op: str):
    assert decodes(ALL[op]["example"], body_type(op))
    assert decodes(None, body_type(op)) == (not required_everywhere(ALL[op]["request"]))


@pytest.mark.parametrize("op", sorted(ALL))
def test_cases_verdicts_match_json_schema(op: str):
    jsonschema = pytest.importorskip("jsonschema")
    schema = {**copy.deepcopy(ALL[op]["request"]), "$defs": DEFS}
    validator = jsonschema.Draft202012Validator(schema)
    for name, body, ok in cases(ALL[op]["request"]):
        assert validator.is_valid(body) == ok, f"{op} {name}: {json.dumps(body)}"


@pytest.mark.parametrize(
    ("body", "path", "says"),
    [
        ({"model": "m1", "data": {"path": "a.csv"}, "mask": "delta"}, "body.mask", "not an option of method 'full'"),
        ({"model": "m1", "data": {"path": "a.csv"}, "method": "lora", "kv": "frozen"}, "body.kv", "method 'lora'"),
        ({"model": "m1", "data": {"path": "a.csv"}, "valid": None}, "body.valid", "valid is null"),
        ({"model": "m1", "data": {"path": "a.csv", "limit": None}}, "body.data.limit", "data.limit is null"),
    ],
)
def test_refusals_name_the_field(body: dict[str, Any], path: str, says: str):
    with pytest.raises(BadRequest) as e:
        decode_body(msgspec.Raw(msgspec.msgpack.encode(body)), OPS["train"].body_type)
    assert e.value.path == path
    assert says in str(e.value)


def test_null_stays_a_value_where_the_schema_allows_it():
    # echo's payload is `unknown`: null inside it is data, not an absent field
    body = decode_body(msgspec.Raw(msgspec.msgpack.encode({"payload": {"a": None}})), OPS["echo"].body_type)
    assert body.payload == {"a": None}
