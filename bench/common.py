"""The one figure type every benchmark prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: str | None = None
    #: ``value → met?``; None when the target is informational.
    meets: Callable[[float, float | None], bool] | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]

    def line(self) -> str:
        parts = [f"BENCH {self.name}", f"value={self.value:.6g}", f"unit={self.unit}"]
        if self.baseline is not None:
            parts.append(f"baseline={self.baseline:.6g}")
        if self.ratio is not None:
            parts.append(f"ratio={self.ratio:.4g}")
        if self.target:
            parts.append(f"target={self.target}")
            if self.meets is not None and not self.meets(self.value, self.ratio):
                parts.append("MISSED")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "target": self.target,
            "met": None if self.meets is None else self.meets(self.value, self.ratio),
        }
