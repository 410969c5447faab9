"""Risk policy: evidence about one file in, ``risk`` in 0..1 and reasons out.

The pipeline hands a policy the file's matches and detector evidence and
knows nothing of how it scores them; replace ``DefaultRiskPolicy`` with any
object that has ``assess(evidence) -> RiskDecision``.

Default rules (documented in the README; every number is a field, loadable
from TOML with ``DefaultRiskPolicy.from_toml`` / ``vscan scan --risk-policy``):

- an exact file-digest hit (SHA-256, MD5, SHA-1) with a bank entry:
  ``exact_risk`` (1.0);
- a perceptual match (vPDQ rule: query% >= 80 or compared% >= 80):
  ``perceptual_base + perceptual_strength_weight * strength`` (0.7 + 0.3 x),
  strength = max(query%, compared%) / 100;
- matched frames below that rule: up to ``partial_max`` (0.5), scaled by
  the matched share and multiplied by ``partial_damp`` (0.4) unless at least
  ``min_partial_seconds`` (2 s) of video matched;
- detector evidence, per risk label of a model (``LabelEvidence``):
  ``detector_max_risk x weight x top-k mean score`` (0.8 at most: a model's
  opinion never reaches the certainty of a bank match), multiplied by
  ``detector_damp`` (0.5) unless at least ``detector_min_frames`` (2) frames
  or ``detector_min_share`` (10 %) of the frames scored above the model's
  threshold, so a single-frame spike weighs less than a sustained signal;
- triage (vscan.detect.triage): a face alone is no risk (kind ``face``: it is
  context); ``nsfw_with_face`` (the NSFW score on frames with a face) with a
  frame over its threshold is sexual content with an identifiable face, at
  the top of the queue: ``triage_base + triage_span x top-k mean`` (0.8 +
  0.15 x), plus ``deepfake_weight`` (0.05) x the top-k mean of chained
  face-crop models (a user's deepfake classifier: kind ``face-chain``), which
  re-orders within that band; below its threshold it counts as a detector;
- matches give the maximum of their rules; the match part and the detector
  part (the maximum over labels) combine as a noisy-OR,
  1 - (1 - match) (1 - detector), so either alone keeps its value and both
  together rank higher; nothing: 0.0.

A reason is given for every rule that contributes at least ``min_reported``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence

from vscan.errors import ConfigError
from vscan.detect.adapters import LabelEvidence

if TYPE_CHECKING:  # for annotations only: the policy works on any object with Match's fields
    from vscan.bank.match import Match

__all__ = ["Evidence", "RiskDecision", "RiskPolicy", "DefaultRiskPolicy"]


@dataclass(frozen=True)
class Evidence:
    path: str
    matches: Sequence[Match] = ()
    duration_seconds: float | None = None
    detections: Sequence[LabelEvidence] = ()


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
    exact_risk: float = 1.0
    perceptual_base: float = 0.7
    perceptual_strength_weight: float = 0.3
    partial_max: float = 0.5
    partial_damp: float = 0.4
    detector_max_risk: float = 0.8
    detector_min_frames: int = 2
    detector_min_share: float = 0.1
    detector_damp: float = 0.5
    triage_base: float = 0.8
    triage_span: float = 0.15
    deepfake_weight: float = 0.05
    min_reported: float = 0.05

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"Invalid risk policy value {f.name} ({value!r}). Supported values are numbers.")
            if f.name not in ("min_partial_seconds", "detector_min_frames") and not 0.0 <= value <= 1.0:
                raise ConfigError(f"Invalid risk policy value {f.name} ({value!r}). Supported values are 0..1.")
            if value < 0:
                raise ConfigError(f"Invalid risk policy value {f.name} ({value!r}). Supported values are >= 0.")
        if self.triage_base + self.triage_span + self.deepfake_weight > 1.0:
            raise ConfigError(f"Invalid triage_base + triage_span + deepfake_weight ({self.triage_base} + {self.triage_span} + "
                              f"{self.deepfake_weight}). Supported values are a sum <= 1.")  # fmt: skip
        if self.perceptual_base + self.perceptual_strength_weight > 1.0:
            raise ConfigError(
                f"Invalid perceptual_base + perceptual_strength_weight ({self.perceptual_base} + "
                f"{self.perceptual_strength_weight}). Supported values are a sum <= 1."
            )

    @classmethod
    def from_toml(cls, path: str | Path) -> "DefaultRiskPolicy":
        """Weights from a TOML file: top-level keys or a ``[risk_policy]`` table,
        named as the fields; fields not given keep their defaults."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"Cannot read risk policy {path}: {exc}") from exc
        data = data.get("risk_policy", data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Invalid risk policy keys {unknown} in {path}. Supported keys are {sorted(known)}.")
        return cls(**data)

    def assess(self, evidence: Evidence) -> RiskDecision:
        match_risk, reasons = self._matches(evidence.matches, still=evidence.duration_seconds == 0.0)
        detector_risk, triage_reasons = self._triage(evidence.detections)
        reasons += triage_reasons
        for d in evidence.detections:
            if d.kind == "face" or (d.kind == "combined" and d.frames_above > 0):
                continue  # faces are context; the combined signal over its threshold is _triage's
            sustained = d.frames_above >= self.detector_min_frames or d.share_above >= self.detector_min_share
            value = self.detector_max_risk * d.weight * d.top_k_mean * (1.0 if sustained else self.detector_damp)
            if value >= self.min_reported:
                when = ", ".join(f"{s.timestamp_seconds:.1f} s" for s in d.strongest)
                reasons.append(
                    f"{d.kind} {d.model}: {d.label} (weight {d.weight:g}) top-{d.top_k} mean {d.top_k_mean:.2f}, "
                    f"max {d.max_score:.2f}, {d.frames_above}/{d.frames} frames >= {d.threshold:g}"
                    + (f"; strongest at {when}" if when else "")
                )
            detector_risk = max(detector_risk, value)
        risk = 1.0 - (1.0 - match_risk) * (1.0 - detector_risk)
        return RiskDecision(risk=round(min(max(risk, 0.0), 1.0), 4), reasons=tuple(reasons))

    def _triage(self, detections: Sequence[LabelEvidence]) -> tuple[float, list[str]]:
        """Sexual content with an identifiable face (``combined`` over its
        threshold), re-ordered by chained face-crop models' scores."""
        combined = [d for d in detections if d.kind == "combined" and d.frames_above > 0]
        if not combined:
            return 0.0, []
        c = max(combined, key=lambda d: d.top_k_mean)
        chains = [d for d in detections if d.kind == "face-chain"]
        fake = max((d.top_k_mean for d in chains), default=0.0)
        risk = self.triage_base + self.triage_span * c.top_k_mean + self.deepfake_weight * fake
        when = "; ".join(f"{s.timestamp_seconds:.1f} s (score {s.score:.2f}, face box {list(s.box) if s.box else None})" for s in c.strongest)
        reasons = [f"sexual content with an identifiable face: NSFW score on frames with a face, top-{c.top_k} mean "
                   f"{c.top_k_mean:.2f}, {c.frames_above}/{c.frames} frames >= {c.threshold:g}; strongest at {when}"]  # fmt: skip
        for d in chains:
            at = ", ".join(f"{s.timestamp_seconds:.1f} s ({s.score:.2f})" for s in d.strongest)
            reasons.append(f"face-crop model {d.model}: {d.label} top-{d.top_k} mean {d.top_k_mean:.2f}, max {d.max_score:.2f}"
                           + (f"; strongest faces at {at}" if at else ""))  # fmt: skip
        return min(risk, 1.0), reasons

    def _matches(self, matches: Sequence[Match], *, still: bool = False) -> tuple[float, list[str]]:
        # A still (duration 0) has no seconds to match: its reasons say "still image", not "0.0 s matched".
        risk, reasons = 0.0, []
        for m in matches:
            if m.signal != "pdq":
                risk = max(risk, self.exact_risk)
                reasons.append(f"exact {m.signal} match with {_name(m)}")
            elif m.is_match:
                strength = max(m.query_pct, m.compared_pct) / 100.0
                risk = max(risk, self.perceptual_base + self.perceptual_strength_weight * strength)
                reasons.append(
                    f"perceptual match with {_name(m)}: query {m.query_pct:.0f}%, "
                    f"compared {m.compared_pct:.0f}%, " + ("still image" if still else f"{m.matched_seconds:.1f} s matched")
                )
            else:
                share = max(m.query_pct, m.compared_pct) / 100.0
                damp = 1.0 if m.matched_seconds >= self.min_partial_seconds else self.partial_damp
                partial = self.partial_max * share * damp
                if partial > self.min_reported:
                    reasons.append(
                        f"partial perceptual match with {_name(m)}: query {m.query_pct:.0f}%, "
                        + ("still image" if still else f"{m.matched_seconds:.1f} s matched")
                    )
                risk = max(risk, partial)
        return min(risk, 1.0), reasons
