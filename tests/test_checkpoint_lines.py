"""outcomes.jsonl lines are put together from each genome's and reading's kept JSON; they
must be the very line ``json.dumps`` writes of ``outcome_to_dict(o)`` (each evaluation's
readings last, their keys sorted, as Reading.to_json spells them), and read back to the
same outcome."""

from __future__ import annotations

import json
import math
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from gi_energy.config.genome import Genome
from gi_energy.meters.reading import Reading
from gi_energy.search.checkpoint import _outcome_line, outcome_from_dict, outcome_to_dict
from gi_energy.tasks.results import Evaluation, Outcome

PROPERTY = settings(max_examples=int(os.environ.get("GI_HYPOTHESIS_EXAMPLES", "60")), deadline=None)

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def genomes(draw):
    layers = {name: tuple(draw(st.lists(st.integers(1, 999), max_size=4)))
              for name in draw(st.lists(st.sampled_from(["hidden", "conv", "blocks"]), unique=True))}
    values = {name: draw(st.one_of(st.integers(-5, 10**6), st.floats(-1e6, 1e6, allow_nan=False), text,
                                   st.booleans()))
              for name in draw(st.lists(st.sampled_from(["learning_rate", "optimizer", "épochs", 'q"x', "z"]),
                                        unique=True))}
    return Genome(layers=layers, values=values)


@st.composite
def readings(draw, depth=0):
    parts = () if depth else tuple(draw(st.lists(readings(depth=1), max_size=2)))
    return Reading(backend=draw(st.sampled_from(["rapl", "nvml", "estimate", "combined", "replay"])),
                   scope=draw(st.sampled_from(["package", "board", "none"])), measured=draw(st.booleans()),
                   energy_j=draw(floats), duration_s=draw(st.floats(0, 1e4)),
                   domains_j=draw(st.dictionaries(st.sampled_from(["package-0", "dram-0", "gpu-0"]),
                                                  st.floats(0, 1e4))),
                   warnings=tuple(draw(st.lists(text, max_size=2))),
                   missing_reason=draw(st.one_of(st.none(), text)), parts=parts)


@st.composite
def outcomes(draw):
    genome = draw(genomes())
    evaluations = tuple(
        Evaluation(genome=genome, status=draw(st.sampled_from(["ok", "failed", "nan"])), repeat=r,
                   reason=draw(st.one_of(st.none(), text)), val_accuracy=draw(floats),
                   train=draw(st.one_of(st.none(), readings())), inference=draw(st.one_of(st.none(), readings())),
                   inference_samples=draw(st.one_of(st.none(), st.integers(0, 10**6))),
                   params=draw(st.one_of(st.none(), st.integers(0, 10**9))), worker=draw(text),
                   extra=draw(st.dictionaries(st.sampled_from(["a", "ß"]), st.floats(allow_nan=False))),
                   metrics=draw(st.dictionaries(st.sampled_from(["f1", "latency"]), floats)))
        for r in range(draw(st.integers(1, 3))))
    return Outcome(genome=genome, evaluations=evaluations, cached=draw(st.booleans()))


def _as_written(d: dict) -> dict:
    """``outcome_to_dict``'s dict with each evaluation's readings moved last, keys sorted."""
    evaluations = []
    for e in d["evaluations"]:
        e = dict(e)
        for window in ("train", "inference"):
            reading = e.pop(window)
            e[window] = None if reading is None else json.loads(json.dumps(reading, sort_keys=True))
        evaluations.append(e)
    return {**d, "evaluations": evaluations}


@PROPERTY
@given(outcomes())
def test_an_outcome_line_is_the_json_of_its_dict(outcome):
    line = _outcome_line(outcome)
    assert line == json.dumps(_as_written(outcome_to_dict(outcome)), separators=(",", ":")) + "\n"
    back = outcome_from_dict(json.loads(line))
    assert back.key == outcome.key and back.cached == outcome.cached
    for a, b in zip(back.evaluations, outcome.evaluations, strict=True):
        assert a.genome.to_json() == b.genome.to_json()
        assert a.status == b.status and a.repeat == b.repeat and a.worker == b.worker
        for x, y in ((a.val_accuracy, b.val_accuracy), (a.train_energy_j, b.train_energy_j)):
            assert x == y or (x is not None and y is not None and math.isnan(x) and math.isnan(y))


def test_an_evaluation_without_its_genome_keeps_every_other_field_in_order():
    ev = Evaluation(genome=Genome(values={"x": 1}), status="ok", val_accuracy=0.5)
    full, rest = ev.to_dict(), ev.to_dict(genome=False)
    assert list(full)[0] == "genome" and list(full)[1:] == list(rest)
    assert {k: v for k, v in full.items() if k != "genome"} == rest


@PROPERTY
@given(readings())
def test_a_reading_s_json_is_kept_and_reads_back(reading):
    text = reading.to_json()
    assert text == json.dumps(reading.to_dict(), sort_keys=True, separators=(",", ":"))
    assert reading.to_json() is text  # built once
    assert Reading.from_dict(json.loads(text)).to_json() == text


@PROPERTY
@given(readings())
def test_a_reading_read_from_any_spelling_writes_its_canonical_json(reading):
    canonical = json.dumps(reading.to_dict(), sort_keys=True, separators=(",", ":"))
    spellings = (canonical, json.dumps(reading.to_dict()), json.dumps(reading.to_dict(), sort_keys=True),
                 json.dumps(reading.to_dict(), separators=(",", ":")),
                 json.dumps(reading.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    for text in spellings:  # kept only where it is the canonical text; encoded afresh elsewhere
        back = Reading.from_json(text)
        assert back.to_json() == canonical
        assert json.dumps(back.to_dict(), sort_keys=True, separators=(",", ":")) == canonical


def test_a_reading_written_before_a_field_existed_is_not_kept_short():
    text = '{"backend":"rapl","domains_j":{},"duration_s":1.0,"energy_j":2.0,"measured":true,"scope":"package"}'
    back = Reading.from_json(text)
    assert back.to_json() == json.dumps(back.to_dict(), sort_keys=True, separators=(",", ":"))
    assert '"wraps":0' in back.to_json()


@PROPERTY
@given(genomes())
def test_a_genome_read_from_any_spelling_writes_its_canonical_json(genome):
    canonical = json.dumps(genome.to_dict(), sort_keys=True, separators=(",", ":"))
    assert genome.to_json() == canonical
    d = genome.to_dict()
    unsorted = {"values": dict(reversed(list(d["values"].items()))), "layers": d["layers"]}
    spellings = (canonical, json.dumps(d), json.dumps(unsorted, separators=(",", ":")),
                 json.dumps(d, separators=(",", ":"), ensure_ascii=False))
    for text in spellings:  # kept only where it is the canonical text; encoded afresh elsewhere
        back = Genome.from_json(text)
        assert back.key == genome.key
        assert back.to_json() == canonical


def test_a_genome_spelled_with_a_float_it_canonicalises_is_encoded_afresh():
    for value, spelled in ((0.1 + 0.2, "0.30000000000000004"), (2.0, "2.0")):
        text = '{"layers":{"hidden":[8]},"values":{"learning_rate":' + spelled + "}}"
        back = Genome.from_json(text)
        assert back.to_json() == json.dumps(back.to_dict(), sort_keys=True, separators=(",", ":"))
        assert back.to_json() != text and back.key == Genome({"hidden": (8,)}, {"learning_rate": value}).key


def test_a_genome_spelled_out_of_key_order_is_encoded_afresh():
    for values, canonical in (('{"optimizer":"adam","epochs":3}', '{"epochs":3,"optimizer":"adam"}'),
                              ('{"z":1,"a":1}', '{"a":1,"z":1}')):
        back = Genome.from_json('{"layers":{"hidden":[8]},"values":' + values + "}")
        assert back.to_json() == '{"layers":{"hidden":[8]},"values":' + canonical + "}"


def test_a_reading_spelled_almost_as_kept_is_encoded_afresh():
    canonical = Reading(backend="rapl", scope="package", measured=True, energy_j=2.0, duration_s=1.0,
                        domains_j={"dram-0": 0.5, "package-0": 1.5}).to_json()
    texts = (canonical.replace('"domains_j":{"dram-0":0.5,"package-0":1.5}', '"domains_j":{"package-0":1.5,"dram-0":0.5}'),
             canonical.replace('"duration_s":1.0,"dynamic_energy_j":null', '"dynamic_energy_j":null,"duration_s":1.0'))
    for text in texts:  # compact, but keys out of order
        assert text != canonical
        assert Reading.from_json(text).to_json() == canonical
    bare = Reading(backend="rapl", scope="package", measured=True, energy_j=2.0, duration_s=1.0).to_json()
    for empty in ('"domains_j":{}', '"parts":[]', '"warnings":[]'):  # null where the reading has an empty one
        text = bare.replace(empty, empty.split(":")[0] + ":null")
        assert text != bare
        assert Reading.from_json(text).to_json() == bare


def test_a_text_with_a_raw_del_is_encoded_afresh():
    # DEL is ASCII, but json's ensure_ascii escapes it: a raw one is not to_json's spelling.
    genome = Genome({"hidden": (8,)}, {"optimizer": "a\x7fb"})
    raw = json.dumps(genome.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert raw != genome.to_json() and Genome.from_json(raw).to_json() == genome.to_json()
    reading = Reading(backend="rapl", scope="package", measured=True, energy_j=1.0, duration_s=1.0,
                      warnings=("a\x7fb",))
    raw = json.dumps(reading.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert raw != reading.to_json() and Reading.from_json(raw).to_json() == reading.to_json()


def test_a_text_with_an_escape_json_would_not_write_is_encoded_afresh():
    genome = Genome({"hidden": (8,)}, {"optimizer": "a/b"})
    escaped = genome.to_json().replace("a/b", "a\\/b")  # "\/" is JSON for "/", never json's spelling
    assert escaped != genome.to_json() and Genome.from_json(escaped).to_json() == genome.to_json()
    reading = Reading(backend="rapl", scope="package", measured=True, energy_j=1.0, duration_s=1.0,
                      missing_reason="A")
    escaped = reading.to_json().replace('"missing_reason":"A"', '"missing_reason":"\\u0041"')
    assert escaped != reading.to_json() and Reading.from_json(escaped).to_json() == reading.to_json()
