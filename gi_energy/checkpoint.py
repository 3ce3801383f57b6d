"""The search's checkpoint: JSON (never pickle), written atomically after every generation.

It holds everything needed to continue exactly where the last finished generation left
off: the population, the generator's state, every outcome of the run, the history and the
totals. Together with the evaluation store (which serves evaluations finished after the
checkpoint), a resumed run with the same seed reaches the same front as an unbroken one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .results import Evaluation, Outcome
from .space import Genome

CHECKPOINT_NAME = "checkpoint.json"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """State after ``generation`` generations (0 = the initial population is evaluated).

    ``outcomes`` is every outcome of the run in the order it was evaluated; ``population``
    the survivors' keys, which index into it. ``rng_state`` is
    ``np.random.Generator.bit_generator.state`` (a JSON-able dict).
    """

    generation: int
    seed: int
    fingerprint: str
    population: list[str]
    rng_state: Mapping[str, Any]
    outcomes: list[Outcome]
    history: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    reference_point: list[float] | None = None

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "generation": self.generation,
            "seed": self.seed,
            "fingerprint": self.fingerprint,
            "population": [{"key": k} for k in self.population],
            "rng_state": _jsonable(self.rng_state),
            "outcomes": [outcome_to_dict(o) for o in self.outcomes],
            "history": self.history,
            "totals": self.totals,
            "reference_point": self.reference_point,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Checkpoint:
        if d.get("format_version") != FORMAT_VERSION:
            raise UsageError(f"checkpoint format {d.get('format_version')!r} is not {FORMAT_VERSION}")
        return cls(
            generation=int(d["generation"]),
            seed=int(d["seed"]),
            fingerprint=str(d["fingerprint"]),
            population=[p["key"] for p in d["population"]],
            rng_state=d["rng_state"],
            outcomes=[outcome_from_dict(o) for o in d["outcomes"]],
            history=list(d.get("history") or []),
            totals=dict(d.get("totals") or {}),
            reference_point=d.get("reference_point"),
        )


def outcome_to_dict(outcome: Outcome) -> dict:
    return {
        "key": outcome.key,
        "genome": outcome.genome.to_dict(),
        "cached": outcome.cached,
        "evaluations": [e.to_dict() for e in outcome.evaluations],
    }


def outcome_from_dict(d: Mapping) -> Outcome:
    return Outcome(
        genome=Genome.from_dict(d["genome"]),
        evaluations=tuple(Evaluation.from_dict(e) for e in d["evaluations"]),
        cached=bool(d["cached"]),
    )


def _jsonable(obj):
    """numpy's bit-generator state holds Python ints already; make sure nothing else slips in."""
    return json.loads(json.dumps(obj, default=int))


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON to a temporary file in the same folder, fsync, then rename over ``path``,
    so a kill at any moment leaves either the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, separators=(",", ":"), allow_nan=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> Path:
    path = Path(run_dir) / CHECKPOINT_NAME
    write_json_atomic(path, checkpoint.to_dict())
    return path


def load_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The run directory's checkpoint, or None when the run stopped before generation 0."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the checkpoint: {exc}") from None
    return Checkpoint.from_dict(data)
