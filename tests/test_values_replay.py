"""Replay and the synthetic landscape by exact value: what a small hand-written grid run
serves (outcomes, cached flags, energy labels, the measured flag), the space restricted
to its levels, every refusal word for word, and the synthetic evaluator's figures for
known genomes (it is deterministic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.config.space import (
    Choice,
    Fixed,
    IntRange,
    LayerSpace,
    RealRange,
    SearchSpace,
)
from gi_energy.errors import UsageError
from gi_energy.meters.reading import Reading
from gi_energy.runs.replay import (
    ReplayEvaluator,
    ReplayMissError,
    SyntheticEvaluator,
    _product_size,
    _sort_key,
)
from gi_energy.runs.rundir import RunDirectory
from gi_energy.tasks.results import Evaluation, Outcome

RAPL = Reading("rapl", "package", True, 5.0, 2.0)
NVML = Reading("nvml", "gpu", True, 0.25, 0.1)
ESTIMATE = Reading("estimate", "process-estimate", False, 1.5, 0.3)


@pytest.fixture(scope="module")
def problem():
    return load_problem("quickstart")


def _ev(genome, status="ok", train=RAPL, inference=NVML, acc=0.5, repeat=0):
    return Evaluation(genome=genome, status=status, repeat=repeat, val_accuracy=acc if status == "ok" else None,
                      reason=None if status == "ok" else "crashed", train=train,
                      inference=inference if status == "ok" else None, inference_samples=1000)


def _genome(hidden, lr=0.01, batch=32, **layers):
    return Genome(layers={"hidden": hidden, **layers}, values={"learning_rate": lr, "batch_size": batch})


def _table(path, problem, outcomes, command="grid"):
    rd = RunDirectory.create(path, problem, command, {})
    rd.write_results(outcomes, problem.objectives, [])
    return path


def _replay(tmp_path, problem, outcomes, **kw):
    return ReplayEvaluator(problem, _table(tmp_path / "grid", problem, outcomes, **kw))


def _space(**layer_kw):
    return SearchSpace(layers={"hidden": LayerSpace(count=IntRange(1, 3), size=IntRange(2, 256, log=True),
                                                    **layer_kw)},
                       params={"learning_rate": RealRange(1e-4, 1e-1, log=True), "batch_size": Choice((32, 128))})


def _grid(hiddens, lrs=(0.01, 0.003), batches=(128, 32), **layers):
    return [Outcome(g, (_ev(g, acc=round(0.1 + 0.01 * i, 2)),)) for i, g in enumerate(
        _genome(h, lr, b, **{k: v(h) for k, v in layers.items()}) for h in hiddens for lr in lrs for b in batches)]


# ------------------------------------------------------------------ what replay serves


def test_outcomes_genomes_and_cached_flags_are_the_recorded_ones(tmp_path, problem):
    table = _grid([(4,), (16, 16)])
    rep = _replay(tmp_path, problem, table)
    recorded = RunDirectory.open(tmp_path / "grid").read_outcomes()
    assert rep.problem is problem and rep.source == tmp_path / "grid" and len(rep) == 8
    assert rep.genomes() == [o.genome for o in table]
    assert rep.outcomes() == [Outcome(o.genome, o.evaluations, cached=False) for o in recorded]
    g = table[5].genome
    assert rep.lookup(g) == Outcome(g, recorded[5].evaluations, cached=False)
    assert rep.lookup(g).evaluations[0].val_accuracy == 0.15
    seen = []
    first = rep.evaluate([g, table[0].genome], on_result=lambda e, c: seen.append((e.key, e.val_accuracy, c)))
    assert [(o.key, o.cached) for o in first] == [(g.key, False), (table[0].key, False)]
    again = rep.evaluate([g], on_result=lambda e, c: seen.append((e.key, e.val_accuracy, c)))
    assert again == [Outcome(g, recorded[5].evaluations, cached=True)]
    assert seen == [(g.key, 0.15, False), (table[0].key, 0.1, False), (g.key, 0.15, True)]
    # lookup does not count as asked: the first evaluate after it is still charged
    assert rep.lookup(g).cached is False


def test_a_stored_grid_point_is_charged_again_and_the_first_duplicate_wins(tmp_path, problem):
    g, h = _genome((4,)), _genome((8,))
    table = [Outcome(g, (_ev(g, acc=0.3),), cached=True), Outcome(h, (_ev(h, acc=0.4),)),
             Outcome(g, (_ev(g, acc=0.9),))]
    rep = _replay(tmp_path, problem, table)
    assert len(rep) == 2 and rep.genomes() == [g, h]
    assert rep.lookup(g).cached is False and rep.lookup(g).evaluations[0].val_accuracy == 0.3
    assert [o.evaluations[0].val_accuracy for o in rep.outcomes()] == [0.3, 0.4]
    rep.evaluate([g])
    assert rep.evaluate([g])[0].cached is True and rep.evaluate([g])[0].evaluations[0].val_accuracy == 0.3


def test_a_missing_genome_is_refused_word_for_word(tmp_path, problem):
    rep = _replay(tmp_path, problem, _grid([(4,)]))
    off = _genome((5,))
    with pytest.raises(ReplayMissError) as err:
        rep.lookup(off)
    assert str(err.value) == (f"genome {off.key} is not in the grid run {tmp_path / 'grid'}: replay only answers "
                              "for grid points; restrict the search space with ReplayEvaluator.restrict(space)")
    assert err.value.__cause__ is None and err.value.__suppress_context__
    with pytest.raises(ReplayMissError):
        rep.evaluate([off])


def test_measured_flag_and_meter_description(tmp_path, problem):
    g, h, f = _genome((4,)), _genome((8,)), _genome((16,))
    measured = [Outcome(g, (_ev(g),)), Outcome(h, (_ev(h, train=NVML, inference=RAPL),)),
                # a failed point's estimate is not an ok evaluation: it neither labels nor unmeasures
                Outcome(f, (_ev(f, status="failed", train=ESTIMATE),))]
    rep = _replay(tmp_path / "a", problem, measured)
    assert rep.measured is True and rep.replayed is True
    assert rep.meter_description == (f"replay of {tmp_path / 'a' / 'grid'} "
                                     "(recorded: nvml:gpu (measured), rapl:package (measured))")
    mixed = [Outcome(g, (_ev(g),)), Outcome(h, (_ev(h, train=ESTIMATE, inference=None),))]
    rep = _replay(tmp_path / "b", problem, mixed)
    assert rep.measured is False
    assert rep.meter_description == (f"replay of {tmp_path / 'b' / 'grid'} (recorded: estimate:process-estimate "
                                     "(estimated), nvml:gpu (measured), rapl:package (measured))")
    missing = Reading.missing_reading("rapl", "no permission")
    rep = _replay(tmp_path / "c", problem, [Outcome(g, (_ev(g, train=missing, inference=None),))])
    assert rep.meter_description == (f"replay of {tmp_path / 'c' / 'grid'} "
                                     "(recorded: rapl: missing (no permission))")
    failed = [Outcome(g, (_ev(g, status="failed"),)), Outcome(h, (_ev(h, status="failed"),))]
    rep = _replay(tmp_path / "d", problem, failed)
    assert rep.measured is False
    assert rep.meter_description == f"replay of {tmp_path / 'd' / 'grid'} (recorded: no readings)"


def test_refusals_are_word_for_word(tmp_path, problem):
    table = _grid([(4,)])
    evo = _table(tmp_path / "evo", problem, table, command="evolve")
    with pytest.raises(UsageError) as err:
        ReplayEvaluator(problem, evo)
    assert str(err.value) == (f"{evo}: an evolve run, not a grid run; replay needs a finished grid run "
                              "(gi-energy grid), whose evaluations.csv covers the whole grid")
    grid = _table(tmp_path / "grid", problem, table)
    other = load_problem("wine")
    with pytest.raises(UsageError) as err:
        ReplayEvaluator(other, grid)
    assert str(err.value) == (f"{grid}: recorded for another problem setup (fingerprint {problem.fingerprint()}, "
                              f"this problem {other.fingerprint()}): its results would not be what training "
                              "this problem gives")
    empty = _table(tmp_path / "empty", problem, [])
    with pytest.raises(UsageError) as err:
        ReplayEvaluator(problem, empty)
    assert str(err.value) == f"{empty}: evaluations.csv holds no evaluations to replay"


def test_a_run_json_without_a_fingerprint_is_replayed(tmp_path, problem):
    grid = _table(tmp_path / "grid", problem, _grid([(4,)]))
    info = json.loads((grid / "run.json").read_text())
    del info["fingerprint"]
    (grid / "run.json").write_text(json.dumps(info))
    assert len(ReplayEvaluator(load_problem("wine"), grid)) == 4
    info["fingerprint"] = None
    (grid / "run.json").write_text(json.dumps(info))
    assert len(ReplayEvaluator(load_problem("wine"), grid)) == 4


# ------------------------------------------------------------------ restrict


def test_restrict_takes_the_grids_levels_in_numeric_order(tmp_path, problem):
    rep = _replay(tmp_path, problem, _grid([(16,), (4,), (16, 16), (4, 4)]))
    space = rep.restrict(_space())
    assert space == SearchSpace(
        layers={"hidden": LayerSpace(count=Choice((1, 2)), size=Choice((4, 16)), uniform=True, per_layer=())},
        params={"learning_rate": Choice((0.003, 0.01)), "batch_size": Choice((32, 128))})
    one = _replay(tmp_path / "one", problem, _grid([(8,)], lrs=(0.01,)))
    assert one.restrict(_space()) == SearchSpace(
        layers={"hidden": LayerSpace(count=Choice((1,)), size=Choice((8,)), uniform=True)},
        params={"learning_rate": Fixed(0.01), "batch_size": Choice((32, 128))})


def test_restrict_levels_per_layer_values_and_zero_layers(tmp_path, problem):
    kinds = {"hidden.kind": lambda h: ("sep",) * len(h)}
    table = _grid([(), (8,), (8, 8)], lrs=(0.01,), batches=(32,), **kinds)
    table += _grid([(8,), (8, 8)], lrs=(0.01,), batches=(32,), **{"hidden.kind": lambda h: ("conv",) * len(h)})
    rep = _replay(tmp_path, problem, table)
    per_layer = (("kind", Choice(("conv", "sep", "dilated"))), ("kernel", IntRange(1, 7)))
    space = rep.restrict(_space(per_layer=per_layer))
    # no grid point has a kernel: it is fixed at the space's centre
    assert space.layers["hidden"] == LayerSpace(count=Choice((0, 1, 2)), size=Choice((8,)), uniform=True,
                                                per_layer=(("kind", Choice(("conv", "sep"))),
                                                           ("kernel", Choice((4,)))))
    assert space.params == {"learning_rate": Fixed(0.01), "batch_size": Fixed(32)}
    empty = _replay(tmp_path / "e", problem, _grid([()]))
    assert empty.restrict(_space()).layers["hidden"] == LayerSpace(count=Choice((0,)), size=Choice((1,)),
                                                                   uniform=True)


def test_restrict_sorts_levels_of_mixed_types_numbers_first(tmp_path, problem):
    # [space] mix = ["auto", 0.5, 2] is a valid free parameter; a space built in Python may
    # mix a layer's values the same way
    table = [Outcome(g, (_ev(g),)) for g in (
        Genome(layers={"hidden": (8,) * n, "hidden.pad": (pad,) * n}, values={"mix": mix})
        for n in (1,) for pad in ("same", 1) for mix in ("auto", 2, 0.5))]
    rep = _replay(tmp_path, problem, table)
    space = rep.restrict(SearchSpace(
        layers={"hidden": LayerSpace(count=IntRange(1, 2), size=IntRange(4, 8),
                                     per_layer=(("pad", Choice(("same", "valid", 1))),))},
        params={"mix": Choice(("auto", 0.5, 2, "off"))}))
    assert space.params == {"mix": Choice((0.5, 2, "auto"))}
    assert space.layers["hidden"].per_layer == (("pad", Choice((1, "same"))),)


def test_restrict_names_the_values_of_a_structure_with_a_dot_in_its_name(tmp_path, problem):
    # a [space] key "a.b" is a valid structure name: its tracks are "a.b.kind", "a.b.kernel"
    table = [Outcome(g, (_ev(g),)) for g in (
        Genome(layers={"a.b": (4,) * n, "a.b.kind": (k,) * n, "a.b.kernel": (3,) * n}, values={})
        for n in (1, 2) for k in ("sep", "conv"))]
    rep = _replay(tmp_path, problem, table)
    space = rep.restrict(SearchSpace(
        layers={"a.b": LayerSpace(count=IntRange(1, 2), size=IntRange(4, 8),
                                  per_layer=(("kernel", IntRange(1, 7)), ("kind", Choice(("conv", "sep")))))},
        params={}))
    assert space.layers["a.b"].per_layer == (("kernel", Choice((3,))), ("kind", Choice(("conv", "sep"))))
    sampled = {space.sample(np.random.default_rng(seed)).key for seed in range(40)}
    assert sampled == {g.key for g in rep.genomes()}


def test_restrict_refuses_what_the_grid_lacks_word_for_word(tmp_path, problem):
    rep = _replay(tmp_path, problem, _grid([(4,), (8,)]))
    src = tmp_path / "grid"
    space = _space()
    more = SearchSpace(layers=space.layers, params={**space.params, "momentum": Choice((0.0, 0.9))})
    with pytest.raises(UsageError) as err:
        rep.restrict(more)
    assert str(err.value) == f"{src}: the grid run has no values for 'momentum'"
    other = SearchSpace(layers={**space.layers, "conv": LayerSpace(count=IntRange(1, 2), size=IntRange(4, 8))},
                        params=space.params)
    with pytest.raises(UsageError) as err:
        rep.restrict(other)
    assert str(err.value) == f"{src}: the grid run has no conv_layers structure"
    # one point without a value is as bad as all of them
    g = Genome(layers={"hidden": (4,)}, values={"learning_rate": 0.01})
    part = _replay(tmp_path / "p", problem, [*_grid([(4,)], lrs=(0.01,), batches=(32,)), Outcome(g, (_ev(g),))])
    with pytest.raises(UsageError, match=r"no values for 'batch_size'$"):
        part.restrict(space)
    h = Genome(layers={}, values={"learning_rate": 0.01, "batch_size": 128})
    part = _replay(tmp_path / "q", problem, [*_grid([(4,)], lrs=(0.01,), batches=(32,)), Outcome(h, (_ev(h),))])
    with pytest.raises(UsageError, match=r"no hidden_layers structure$"):
        part.restrict(space)
    gap = _replay(tmp_path / "g", problem, _grid([(4,), (8,)])[:-1])
    with pytest.raises(UsageError) as err:
        gap.restrict(space)
    assert str(err.value) == (f"{tmp_path / 'g' / 'grid'}: the grid run covers 7 genomes but its levels span 8; "
                              "replay needs a complete grid run (finish it with --resume)")


def test_sort_key_puts_numbers_in_value_order_before_text():
    assert sorted([10, "b", 2.5, True, "a", 100, "B"], key=_sort_key) == [2.5, 10, 100, "B", True, "a", "b"]
    assert _sort_key(3) == (0, 3.0, "") and _sort_key(False) == (1, 0.0, "False")


def test_product_size_counts_every_structure_and_hyperparameter():
    space = SearchSpace(
        layers={"hidden": LayerSpace(count=Choice((0, 1, 2)), size=Choice((8, 16)),
                                     per_layer=(("kind", Choice(("a", "b", "c"))),)),
                "conv": LayerSpace(count=Choice((1,)), size=Choice((4, 5, 6)))},
        params={"lr": Choice((1, 2)), "x": Fixed(3), "y": Choice((1, 2, 3, 4, 5))})
    # hidden: 1 (no layers) + 2 counts x 2 sizes x 3 kinds; conv: 3 sizes; params: 2 x 1 x 5
    assert _product_size(space) == 13 * 3 * 10
    assert _product_size(SearchSpace(layers={}, params={})) == 1


# ------------------------------------------------------------------ the synthetic landscape


def test_synthetic_figures_of_known_genomes():
    ev = SyntheticEvaluator(None)
    g = Genome(layers={"hidden": (8,)}, values={"learning_rate": 0.01, "epochs": 10})
    # params (64+1)*8 + (8+1)*10 = 610; train 610*10*2e-5 + 0.2 J; inference 610*2e-5 + 0.01 J
    assert ev.synthesise(g) == Evaluation(
        genome=g, status="ok", val_accuracy=0.449231, test_accuracy=0.444231,
        train=Reading("estimate", "process-estimate", False, pytest.approx(0.322), pytest.approx(0.0322)),
        inference=Reading("estimate", "process-estimate", False, pytest.approx(0.0222), pytest.approx(0.00222)),
        train_time_s=pytest.approx(0.0322), inference_time_s=pytest.approx(0.00222), inference_samples=1000,
        params=610, flops_per_sample=1220, wall_time_s=pytest.approx(0.0322), worker="synthetic")
    two = ev.synthesise(Genome(layers={"hidden": (32, 32)},
                               values={"learning_rate": 0.001, "epochs": 5, "activation": "relu"}))
    assert (two.val_accuracy, two.test_accuracy, two.params, two.flops_per_sample) == (0.708548, 0.703548, 3466, 6932)
    assert two.train.energy_j == pytest.approx(0.5466) and two.inference.energy_j == pytest.approx(0.07932)
    # no hidden layers, no epochs, no learning rate: 65*10 params, 20 epochs, 1e-3
    for g in (Genome(layers={"hidden": ()}), Genome()):
        e = ev.synthesise(g)
        assert e.params == 650 and e.train.energy_j == pytest.approx(0.46) and e.inference.energy_j == \
            pytest.approx(0.023)
    assert ev.synthesise(Genome(layers={"hidden": ()})).val_accuracy == 0.43963
    # accuracy never drops under 0.05
    low = ev.synthesise(Genome(values={"learning_rate": 1e-20, "epochs": 1}))
    assert (low.val_accuracy, low.test_accuracy) == (0.05, 0.045)
    assert low.train.energy_j == pytest.approx(0.213) and low.inference.energy_j == pytest.approx(0.023)
    # ... nor rises over 1 (few enough epochs make the epoch term a gain: -0.5 / -0.5)
    high = ev.synthesise(Genome(values={"epochs": -5.5}))
    assert (high.val_accuracy, high.test_accuracy) == (1.0, 0.995)
    # the noise is the key's hash over 0xFFFFFFFF: this genome's accuracy sits where a
    # divisor of 2**32 would round it one millionth lower (0.440238)
    assert ev.synthesise(Genome(layers={"hidden": (8,)}, values={"tag": 232938})).val_accuracy == 0.440239


def test_synthetic_inputs_and_classes_set_the_widths():
    e = SyntheticEvaluator(None, n_inputs=3, n_classes=2).synthesise(Genome(layers={"hidden": (5, 4)}))
    assert e.params == 4 * 5 + 6 * 4 + 5 * 2


def test_synthetic_class_labels():
    assert SyntheticEvaluator.replayed is False and SyntheticEvaluator.measured is False
    assert SyntheticEvaluator.meter_description == "synthetic landscape (estimated energy)"
    with SyntheticEvaluator("p") as ev:
        assert ev.problem == "p" and ev.memory == {} and ev.fail_keys == set() and ev.trained == []
        assert (ev.n_inputs, ev.n_classes) == (64, 10)
    assert ev.__exit__(None, None, None) is None


def test_synthetic_failures_memory_and_trained(problem):
    a, b = Genome(layers={"hidden": (8,)}), Genome(layers={"hidden": (16,)})
    memory: dict[str, Outcome] = {}
    seen = []
    ev = SyntheticEvaluator(problem, memory=memory, fail_keys=iter([b.key]))
    assert ev.memory is memory and ev.fail_keys == {b.key}
    out = ev.evaluate([a, b], on_result=lambda e, c: seen.append((e.key, e.status, c)))
    assert [o.cached for o in out] == [False, False] and ev.trained == [a.key, b.key]
    assert out[1].evaluations == (Evaluation(genome=b, status="failed", reason="synthetic failure",
                                             train=Reading.missing_reading("estimate", "not run")),)
    assert out[0].evaluations == (ev.synthesise(a),) and out[0].genome is a
    assert memory == {a.key: out[0], b.key: out[1]}
    again = ev.evaluate([b, a], on_result=lambda e, c: seen.append((e.key, e.status, c)))
    assert again == [Outcome(b, out[1].evaluations, cached=True), Outcome(a, out[0].evaluations, cached=True)]
    assert ev.trained == [a.key, b.key]
    assert seen == [(a.key, "ok", False), (b.key, "failed", False), (b.key, "failed", True), (a.key, "ok", True)]
    # a second evaluator sharing the memory trains nothing it holds
    other = SyntheticEvaluator(problem, memory=memory)
    c = Genome(layers={"hidden": (4,)})
    got = other.evaluate([a, c])
    assert [o.cached for o in got] == [True, False] and other.trained == [c.key] and len(memory) == 3
    assert got[0].evaluations == out[0].evaluations
    # without a memory of its own each evaluator starts empty
    fresh = SyntheticEvaluator(problem)
    assert fresh.evaluate([a]) == [Outcome(a, out[0].evaluations, cached=False)]
    assert fresh.memory == {a.key: Outcome(a, out[0].evaluations, cached=False)}
    assert SyntheticEvaluator(problem).memory == {} and len(memory) == 3
