"""Response shapes shared by several routers."""

from __future__ import annotations

from pydantic import BaseModel

from obeya.engine.results import Ratio


class RatioOut(BaseModel):
    """A share: numerator ÷ denominator; `value` is null ("no data") when the denominator is 0."""

    numerator: float
    denominator: float
    value: float | None

    @classmethod
    def of(cls, ratio: Ratio) -> RatioOut:
        """From the engine's `Ratio`."""
        return cls(numerator=ratio.numerator, denominator=ratio.denominator, value=ratio.value)
