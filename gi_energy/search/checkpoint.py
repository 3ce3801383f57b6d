"""The search's checkpoint: JSON (never pickle), written atomically after every generation.

It holds everything needed to continue exactly where the last finished generation left
off: the population, the generator's state, every outcome of the run, the history and the
totals. The outcomes go to an append-only JSON-lines file beside it (``checkpoint.json``
names how many lines belong to it), so a checkpoint costs the new outcomes of a
generation, not the whole run again: rewriting every outcome each generation made the
checkpoint the engine's largest cost (quadratic in the run's length). Together with the evaluation store (which serves evaluations finished after the
checkpoint), a resumed run with the same seed reaches the same front as an unbroken one.
Its totals are those of its own outcomes: the energy of an unfinished generation is
counted when a resume replays it, from the run's journal (trained.jsonl), never here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gi_energy.config.genome import Genome
from gi_energy.errors import UsageError
from gi_energy.runs.files import atomic_open, compact_json, write_json_atomic
from gi_energy.tasks.results import Evaluation, Outcome

CHECKPOINT_NAME = "checkpoint.json"
OUTCOMES_NAME = "checkpoint-outcomes.jsonl"
FORMAT_VERSION = 2


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
            "outcomes_file": OUTCOMES_NAME,
            "outcomes_count": len(self.outcomes),
            "history": self.history,
            "totals": self.totals,
            "reference_point": self.reference_point,
        }

    @classmethod
    def from_dict(cls, d: Mapping, outcomes: list[Outcome]) -> Checkpoint:
        return cls(
            generation=int(d["generation"]),
            seed=int(d["seed"]),
            fingerprint=str(d["fingerprint"]),
            population=[p["key"] for p in d["population"]],
            rng_state=d["rng_state"],
            outcomes=outcomes,
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


class CheckpointWriter:
    """Writes a run's checkpoints: appends the outcomes not yet on disk (fsync), then
    replaces checkpoint.json atomically. A kill between the two leaves extra lines that
    the old checkpoint.json does not count; they are dropped on the next write.
    ``durable=False`` (a replay) flushes without fsync: safe against a killed process,
    not a power loss, and three fsyncs a generation were most of a replay's time."""

    def __init__(self, run_dir: Path, *, durable: bool = True):
        self.run_dir = Path(run_dir)
        self.durable = durable
        self.written = -1  # unknown: the first save rewrites the outcomes file
        self.saved: Checkpoint | None = None  # the checkpoint last saved

    def save(self, checkpoint: Checkpoint) -> Path:
        outcomes_path = self.run_dir / OUTCOMES_NAME
        n = len(checkpoint.outcomes)
        if self.written < 0 or self.written > n:
            _write_lines_atomic(outcomes_path, checkpoint.outcomes, self.durable)
        elif n > self.written:
            with open(outcomes_path, "a", encoding="utf-8") as fh:
                for o in checkpoint.outcomes[self.written:]:
                    fh.write(_outcome_line(o))
                fh.flush()
                if self.durable:
                    os.fsync(fh.fileno())
        self.written = n
        path = self.run_dir / CHECKPOINT_NAME
        write_json_atomic(path, checkpoint.to_dict(), compact=True, durable=self.durable)
        self.saved = checkpoint
        return path


def _outcome_line(outcome: Outcome) -> str:
    """The compact JSON of ``outcome_to_dict(outcome)`` and a newline; each evaluation's
    readings come last, their keys sorted. Each genome's and reading's JSON (kept on the
    object, built once for this file and evaluations.csv both) is put in whole, not
    encoded again for the outcome and for every evaluation."""
    evaluations = ",".join(
        '{"genome":' + ev.genome.to_json() + "," + compact_json(ev.to_dict(genome=False, readings=False))[1:-1]
        + ',"train":' + _reading_json(ev.train) + ',"inference":' + _reading_json(ev.inference) + "}"
        for ev in outcome.evaluations)
    return (f'{{"key":{json.dumps(outcome.key)},"genome":{outcome.genome.to_json()},'
            f'"cached":{"true" if outcome.cached else "false"},"evaluations":[{evaluations}]}}\n')


def _reading_json(reading) -> str:
    return "null" if reading is None else reading.to_json()


def _write_lines_atomic(path: Path, outcomes, durable: bool = True) -> None:
    with atomic_open(path, durable=durable) as fh:
        for o in outcomes:
            fh.write(_outcome_line(o))


def _inside(run_dir: Path, name, checkpoint: Path) -> Path:
    """``run_dir / name`` when that is a file inside the run directory (links resolved);
    a checkpoint is data and never sends a read elsewhere (an absolute path, ``..``)."""
    if not isinstance(name, str) or not name:
        raise UsageError(f"{checkpoint}: outcomes_file must be a file name in the run directory, got {name!r}")
    target = (run_dir / name).resolve()
    if not target.is_relative_to(run_dir.resolve()):
        raise UsageError(f"{checkpoint}: outcomes_file {name!r} is outside the run directory {run_dir}; "
                         "a checkpoint reads only its own run directory's files")
    return target


def load_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The run directory's checkpoint, or None when the run stopped before generation 0."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format_version") != FORMAT_VERSION:
            raise UsageError(f"{path}: checkpoint format {data.get('format_version')!r} is not "
                             f"{FORMAT_VERSION}; it cannot be resumed by this version")
        n = int(data["outcomes_count"])
        outcomes = []
        with open(_inside(Path(run_dir), data["outcomes_file"], path), encoding="utf-8") as fh:
            for _, line in zip(range(n), fh):
                outcomes.append(outcome_from_dict(json.loads(line)))
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{path}: cannot read the checkpoint: {exc}") from None
    if len(outcomes) != n:
        raise UsageError(f"{path}: the checkpoint counts {n} outcomes but {OUTCOMES_NAME} holds {len(outcomes)}")
    return Checkpoint.from_dict(data, outcomes)
