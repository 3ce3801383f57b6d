"""Problem's own methods, value by value: the fingerprint's exact payload (what goes in,
what is left out, how files and modules are digested), ``with_overrides``, ``to_toml`` and
a task's source file."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from pathlib import Path

import pytest

from gi_energy.config.problem import (
    DatasetConfig,
    EvaluationConfig,
    ModelConfig,
    Problem,
    SearchConfig,
    TableConfig,
    TaskConfig,
    _module_digest,
)
from gi_energy.config.sources import digest_of as _digest_of
from gi_energy.config.sources import file_digest as _file_digest
from gi_energy.config.space import SearchSpace

SPACE = SearchSpace(layers={}, params={})
# DatasetConfig's fields as the fingerprint has always hashed them (the ones added later,
# loader, loader_module, loader_name and labels, are left out at their defaults).
BASE_DATASET = {"source": "digits", "path": None, "target": None, "image_shape": None,
                "validation_fraction": 0.2, "test_fraction": 0.2, "standardize": True,
                "n_samples": 2000, "n_features": 20, "n_informative": 10, "n_classes": 2}


def _sha(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _bytes_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _bytes_digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _payload(dataset=None, model="mlp", eval_seed=0, min_inference_s=0.2, **extra) -> dict:
    return {"dataset": dict(BASE_DATASET, **(dataset or {})), "model": model, "eval_seed": eval_seed,
            "min_inference_s": min_inference_s, "fingerprint_version": 1, **extra}


def test_fingerprint_of_the_defaults_is_the_hash_of_this_payload():
    fp = Problem(name="x", space=SPACE).fingerprint()
    assert fp == _sha(_payload())
    # Pinned: a change here orphans the evaluations of every existing store.
    assert fp == "95a6cfd9602e4983"


def test_fingerprint_hashes_each_evaluation_field_and_no_search_setting():
    p = Problem(name="x", space=SPACE)
    fam = dataclasses.replace(p, model=ModelConfig("cnn"))
    assert fam.fingerprint() == _sha(_payload(model="cnn"))
    seed = p.with_overrides(evaluation={"seed": 3})
    assert seed.fingerprint() == _sha(_payload(eval_seed=3))
    inf = p.with_overrides(evaluation={"min_inference_s": 0.5})
    assert inf.fingerprint() == _sha(_payload(min_inference_s=0.5))
    ds = p.with_overrides(dataset={"image_shape": (1, 8, 8), "n_classes": 3})
    assert ds.fingerprint() == _sha(_payload(dataset={"image_shape": [1, 8, 8], "n_classes": 3}))
    same = p.with_overrides(search={"population": 4, "generations": 1}, seed=9, name="y",
                            evaluation={"workers": 4, "repeats": 3, "timeout_s": 1.0},
                            energy={"meter": "estimate"}, description="d")
    assert same.fingerprint() == p.fingerprint()


def test_fingerprint_leaves_the_later_dataset_fields_out_only_at_their_defaults():
    p = Problem(name="x", space=SPACE)
    values = p.with_overrides(dataset={"labels": "values"})
    assert values.fingerprint() == _sha(_payload(dataset={"labels": "values"}))
    loader = p.with_overrides(dataset={"source": "loader", "loader": "ld.py:load", "loader_name": "load"})
    assert loader.fingerprint() == _sha(_payload(dataset={"source": "loader", "loader": "ld.py:load",
                                                          "loader_name": "load"}))


def test_fingerprint_of_a_loader_module_hashes_its_source_file():
    import json as json_module

    p = Problem(name="x", space=SPACE).with_overrides(
        dataset={"source": "loader", "loader": "json:loads", "loader_module": "json", "loader_name": "loads"})
    src = _bytes_digest(Path(json_module.__file__))
    assert p.fingerprint() == _sha(_payload(dataset={"source": "loader", "loader": "json:loads",
                                                     "loader_module": "json", "loader_name": "loads",
                                                     "loader_source": src}))
    gone = p.with_overrides(dataset={"loader_module": "no_such_module_gi"})
    assert gone.fingerprint() == _sha(_payload(dataset={"source": "loader", "loader": "json:loads",
                                                        "loader_module": "no_such_module_gi",
                                                        "loader_name": "loads", "loader_source": None}))


def test_fingerprint_replaces_a_dataset_path_by_the_digest_of_its_bytes(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x,y\n1,0\n")
    b.write_text("x,y\n1,0\n")
    pa = Problem(name="x", space=SPACE, dataset=DatasetConfig(source="csv", path=a, target="y"))
    pb = dataclasses.replace(pa, dataset=DatasetConfig(source="csv", path=b, target="y"))
    expected = _sha(_payload(dataset={"source": "csv", "path": _bytes_digest(a), "target": "y"}))
    assert pa.fingerprint() == expected
    assert pb.fingerprint() == expected  # same bytes elsewhere: the same results
    gone = dataclasses.replace(pa, dataset=DatasetConfig(source="csv", path=tmp_path / "no.csv", target="y"))
    assert gone.fingerprint() == _sha(_payload(dataset={"source": "csv", "path": str(tmp_path / "no.csv"),
                                                        "target": "y"}))


def test_file_digests_of_missing_and_unreadable_files_are_their_paths(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"\x00\x01")
    assert _file_digest(f) == hashlib.sha256(b"\x00\x01").hexdigest()[:16]
    assert _file_digest(tmp_path / "missing") == str(tmp_path / "missing")
    assert _file_digest(tmp_path) == str(tmp_path)  # a folder: stat works, reading does not
    assert _digest_of(str(tmp_path / "missing"), 1, 2) == str(tmp_path / "missing")
    assert len(_file_digest(f)) == 16


def test_a_file_digest_is_memoised_on_both_mtime_and_size(tmp_path):
    import os

    f = tmp_path / "f.csv"
    f.write_text("aaaa")
    os.utime(f, ns=(10**18, 10**18))
    first = _file_digest(f)
    f.write_text("bbbb")  # the same size, a later mtime
    os.utime(f, ns=(2 * 10**18, 2 * 10**18))
    second = _file_digest(f)
    assert (first, second) == (_bytes_digest_of(b"aaaa"), _bytes_digest_of(b"bbbb"))
    f.write_text("ccccc")  # another size, the same mtime
    os.utime(f, ns=(2 * 10**18, 2 * 10**18))
    assert _file_digest(f) == _bytes_digest_of(b"ccccc")


def test_fingerprint_of_a_task_has_its_entry_options_declaration_and_source(tmp_path):
    src = tmp_path / "t.py"
    src.write_text("class T: pass\n")
    when = datetime.date(2024, 5, 1)  # a TOML date: json needs default=str
    task = TaskConfig(entry="t.py:T", file=src, name="T", options=(("a", 1), ("d", when)), declared="v2;score")
    p = Problem(name="x", space=SPACE, task=task)
    assert p.fingerprint() == _sha(_payload(task={"entry": "t.py:T", "options": [["a", 1], ["d", "2024-05-01"]],
                                                  "declared": "v2;score", "source": _bytes_digest(src)}))
    nowhere = dataclasses.replace(p, task=TaskConfig(entry="no_such_module_gi:T", module="no_such_module_gi"))
    assert nowhere.fingerprint() == _sha(_payload(task={"entry": "no_such_module_gi:T", "options": [],
                                                        "declared": None, "source": None}))


def test_fingerprint_of_a_table_has_its_bytes_and_how_they_are_read(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("w,s,acc\n1,0,0.5\n")
    table = TableConfig(path=csv, configuration=("w",), seed=("s",), measured="m", metrics=(("accuracy", "acc"),))
    p = Problem(name="x", space=SPACE, table=table)
    assert p.fingerprint() == _sha(_payload(table={"source": _bytes_digest(csv), "configuration": ["w"],
                                                   "seed": ["s"], "measured": "m",
                                                   "metrics": [["accuracy", "acc"]]}))


def test_a_task_source_file_is_its_file_or_its_modules_origin(tmp_path, monkeypatch):
    import json as json_module

    assert TaskConfig(entry="x.py:T", file=tmp_path / "x.py").source_file() == tmp_path / "x.py"
    assert TaskConfig(entry="json:T", module="json").source_file() == Path(json_module.__file__)
    assert TaskConfig(entry="no_such_module_gi:T", module="no_such_module_gi").source_file() is None
    assert TaskConfig(entry="x", module="no_such_module_gi.sub").source_file() is None  # ImportError
    assert TaskConfig(entry="x").source_file() is None  # no module: find_spec("") is a ValueError
    (tmp_path / "nspkg_gi").mkdir()  # a namespace package: a spec without an origin
    monkeypatch.syspath_prepend(str(tmp_path))
    assert TaskConfig(entry="nspkg_gi:T", module="nspkg_gi").source_file() is None


def test_module_digest_finds_the_file_without_importing(tmp_path, monkeypatch):
    import json as json_module

    assert _module_digest("json") == _bytes_digest(Path(json_module.__file__))
    assert _module_digest("no_such_module_gi") is None
    assert _module_digest("no_such_module_gi.sub") is None
    assert _module_digest("") is None
    assert _module_digest("sys") == "built-in"  # origin "built-in" is no file: its name stands in
    (tmp_path / "nspkg_gi2").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _module_digest("nspkg_gi2") is None


def test_with_overrides_replaces_fields_and_skips_empty_sections():
    p = Problem(name="x", space=SPACE)
    q = p.with_overrides(seed=5, search={"population": 8}, evaluation=None, energy={},
                         objectives={"accuracy": "max", "params": "min"})
    assert q.seed == 5
    assert q.search == dataclasses.replace(SearchConfig(), population=8)
    assert q.evaluation == EvaluationConfig() and q.energy == p.energy
    assert q.objectives == {"accuracy": "max", "params": "min"}
    assert p.with_overrides(name="y").name == "y"
    assert p.with_overrides(seed=None).seed == 0
    assert p.with_overrides() == p


def test_to_toml_is_the_files_text_or_a_python_stub():
    assert Problem(name="x", space=SPACE, text="[problem]\nname = 'x'\n").to_toml() == "[problem]\nname = 'x'\n"
    assert Problem(name="n", space=SPACE, seed=4).to_toml() == '# built in Python\n[problem]\nname = "n"\nseed = 4\n'


@pytest.mark.parametrize("field_name", ["validation_fraction", "test_fraction"])
def test_every_split_fraction_changes_the_fingerprint(field_name):
    p = Problem(name="x", space=SPACE)
    q = p.with_overrides(dataset={field_name: 0.25})
    assert q.fingerprint() == _sha(_payload(dataset={field_name: 0.25}))
