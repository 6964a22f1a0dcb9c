"""Base classes shared by every input and output schema.

`extra="forbid"` makes a typo in a YAML key an error instead of a silently ignored field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$", min_length=1, max_length=80),
]
"""Lower-case slug used for every catalog and problem id (e.g. `h100-sxm`, `llama-3.1-8b`)."""

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class StrictModel(BaseModel):
    """Frozen-by-convention pydantic model that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", validate_default=True, str_strip_whitespace=True)


class Source(StrictModel):
    """A public document a figure was taken from."""

    title: str = Field(min_length=3)
    url: HttpUrl
    note: str | None = Field(
        default=None, description="Which figures this source supports, or how a figure was derived."
    )
