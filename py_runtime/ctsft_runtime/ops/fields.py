"""Field types with the bounds the SDK's zod schemas state (docs/contract.json), so a body the
SDK refuses is refused by the runtime while decoding too, naming the field
(test/py/protocol/test_contract.py checks both ends agree)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from ..slots import FIELD_NAME

Positive = Annotated[int, Meta(gt=0)]
NonNegative = Annotated[int, Meta(ge=0)]
SamplingSeed = Annotated[int, Meta(ge=0, le=2**32 - 1)]  # transformers.set_seed seeds numpy too: 32 bits
PositiveFloat = Annotated[float, Meta(gt=0)]
NonNegativeFloat = Annotated[float, Meta(ge=0)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
NonEmpty = Annotated[str, Meta(min_length=1)]
MaxLength = Annotated[int, Meta(ge=8)]  # tokens: room for a template and a label
Head = tuple[NonNegative, NonNegative]
Heads = Annotated[list[Head], Meta(min_length=1)]
Labels = Annotated[list[str], Meta(min_length=1)]
# A template slot: `{premise}` (src/schema/data.ts `FieldName`).
FieldName = Annotated[str, Meta(pattern=f"^{FIELD_NAME.pattern}$")]
# Empty maps pass decoding, as in zod (a record has no size bound), and are refused by the loader.
FieldMap = dict[FieldName, NonEmpty]  # field -> column
LabelMap = dict[NonEmpty, NonEmpty]  # label in the file -> label name
# A named delta on a model (src/schema/serving.ts `DeltaName`).
DeltaName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
# One name for every row, or one entry per row (None: the base model).
DeltaChoice = DeltaName | list[DeltaName | None]
