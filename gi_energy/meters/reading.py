"""What a meter window yields: an energy reading that carries where it came from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

BACKENDS = ("rapl", "nvml", "estimate", "combined", "replay", "table")
SCOPES = ("package", "board", "apportioned", "process-estimate", "combined", "none", "table")


@dataclass(frozen=True)
class Reading:
    """One metered window.

    ``energy_j`` is None when the reading could not be taken (``missing_reason`` says
    why): a missing reading is never a zero. ``domains_j`` gives per-domain joules
    (``package-0``, ``dram-0``, ``gpu-0`` ...). ``measured`` is False for estimates.
    ``parts`` holds the component readings of a combined (RAPL + NVML) window.
    """

    backend: str
    scope: str
    measured: bool
    energy_j: float | None
    duration_s: float
    domains_j: Mapping[str, float] = field(default_factory=dict)
    wraps: int = 0
    idle_power_w: float | None = None
    dynamic_energy_j: float | None = None
    warnings: tuple[str, ...] = ()
    missing_reason: str | None = None
    parts: tuple[Reading, ...] = ()

    @property
    def missing(self) -> bool:
        return self.energy_j is None

    @property
    def power_w(self) -> float | None:
        if self.energy_j is None or self.duration_s <= 0:
            return None
        return self.energy_j / self.duration_s

    @property
    def source(self) -> str:
        """A short label such as 'rapl:package (measured)' or 'estimate (estimated)'."""
        if self.missing:
            return f"{self.backend}: missing ({self.missing_reason})"
        kind = "measured" if self.measured else "estimated"
        return f"{self.backend}:{self.scope} ({kind})"

    def to_dict(self) -> dict:
        d = {name: getattr(self, name) for name in _FIELDS}  # the nested ones converted below
        d["domains_j"] = dict(self.domains_j)
        d["warnings"] = list(self.warnings)
        d["parts"] = [p.to_dict() for p in self.parts]
        return d

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON with sorted keys. Kept once built (a reading never
        changes): evaluations.csv and the checkpoint's outcome lines both hold it, and a
        replay hands the same readings to run after run."""
        text = self.__dict__.get("_json")
        if text is None:
            text = _COMPACT_SORTED(self.to_dict())
            object.__setattr__(self, "_json", text)
        return text

    @classmethod
    def from_dict(cls, d: Mapping) -> Reading:
        d = dict(d)
        d["domains_j"] = dict(d.get("domains_j") or {})
        d["warnings"] = tuple(d.get("warnings") or ())
        d["parts"] = tuple(cls.from_dict(p) for p in d.get("parts") or ())
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> Reading:
        """The reading ``text`` holds. Text spelled as :meth:`to_json` spells it is kept as
        its JSON, so a reading read back (a replay's table) is not encoded again when it is
        written out; any other spelling is encoded afresh when asked."""
        data = json.loads(text)
        reading = cls.from_dict(data)
        if _spelled_as_kept(text, data):
            object.__setattr__(reading, "_json", text)
        return reading

    @classmethod
    def missing_reading(cls, backend: str, reason: str, duration_s: float = 0.0) -> Reading:
        return cls(backend=backend, scope="none", measured=False, energy_j=None, duration_s=duration_s,
                   missing_reason=reason)


_FIELDS = tuple(f.name for f in fields(Reading))
_COMPACT_SORTED = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def _spelled_as_kept(text: str, data) -> bool:
    """Is ``text`` (parsed: ``data``) what :meth:`Reading.to_json` writes? Checked cheaply
    and strictly: no space (the default separators put one after every comma and colon),
    no character json would escape (beyond ASCII, DEL) and no escape at all (another
    writer's escapes may differ from json's), every field, keys sorted, the nested ones as
    to_dict builds them (no parts: a combined reading is encoded afresh). What fails is
    encoded afresh when written, so a space inside a string (a warning) costs only the
    encoding keeping would have saved."""
    if " " in text or not text.isascii() or "\x7f" in text or "\\" in text:
        return False
    if len(data) != len(_FIELDS) or list(data) != sorted(data):
        return False
    domains = data["domains_j"]
    return (isinstance(domains, dict) and list(domains) == sorted(domains)
            and isinstance(data["warnings"], list) and data["parts"] == [])
