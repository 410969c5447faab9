"""Risk policy: evidence about one file in, ``risk`` in 0..1 and reasons out.

The pipeline hands a policy the file's matches and knows nothing of how it
scores them; replace ``DefaultRiskPolicy`` with any object that has
``assess(evidence) -> RiskDecision``.

Default rules (documented in the README):

- an exact file-digest hit (SHA-256, MD5, SHA-1) with a bank entry: 1.0;
- a perceptual match (vPDQ rule: query% >= 80 or compared% >= 80):
  0.7 + 0.3 * strength, strength = max(query%, compared%) / 100;
- matched frames below that rule: up to 0.5, scaled by the matched share
  and damped unless at least ``min_partial_seconds`` of video matched;
- nothing: 0.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from scanner.match import Match

__all__ = ["Evidence", "RiskDecision", "RiskPolicy", "DefaultRiskPolicy"]


@dataclass(frozen=True)
class Evidence:
    path: str
    matches: Sequence[Match] = ()
    duration_seconds: float | None = None


@dataclass(frozen=True)
class RiskDecision:
    risk: float
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 0.0 <= self.risk <= 1.0:
            raise ValueError(f"Invalid risk ({self.risk}). Supported values are 0..1.")


class RiskPolicy(Protocol):
    def assess(self, evidence: Evidence) -> RiskDecision: ...


def _name(m: Match) -> str:
    return f"{m.bank_entry_id} ({m.label})" if m.label else m.bank_entry_id


@dataclass(frozen=True)
class DefaultRiskPolicy:
    min_partial_seconds: float = 2.0

    def assess(self, evidence: Evidence) -> RiskDecision:
        risk, reasons = 0.0, []
        for m in evidence.matches:
            if m.signal != "pdq":
                risk = 1.0
                reasons.append(f"exact {m.signal} match with {_name(m)}")
            elif m.is_match:
                strength = max(m.query_pct, m.compared_pct) / 100.0
                risk = max(risk, 0.7 + 0.3 * strength)
                reasons.append(
                    f"perceptual match with {_name(m)}: query {m.query_pct:.0f}%, "
                    f"compared {m.compared_pct:.0f}%, {m.matched_seconds:.1f} s matched"
                )
            else:
                share = max(m.query_pct, m.compared_pct) / 100.0
                damp = 1.0 if m.matched_seconds >= self.min_partial_seconds else 0.4
                partial = 0.5 * share * damp
                if partial > 0.05:
                    reasons.append(
                        f"partial perceptual match with {_name(m)}: query {m.query_pct:.0f}%, "
                        f"{m.matched_seconds:.1f} s matched"
                    )
                risk = max(risk, partial)
        return RiskDecision(risk=round(min(risk, 1.0), 4), reasons=tuple(reasons))
