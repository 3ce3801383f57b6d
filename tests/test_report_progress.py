"""The progress bar on a terminal narrower than its line: "\\r" returns only to the start
of the last row, so a line that wrapped left a new row at every redraw, where the README
and the module say the bar redraws in place."""

from __future__ import annotations

import io

import pytest

from gi_energy.config.genome import Genome
from gi_energy.meters.reading import Reading
from gi_energy.report.progress import Progress
from gi_energy.tasks.results import Evaluation


def _ev(i: int) -> Evaluation:
    return Evaluation(genome=Genome(layers={"hidden": (8 + i,)}, values={}), status="ok", val_accuracy=0.9,
                      train=Reading("estimate", "process-estimate", False, 1234.5 * i, 1.0))


def _draw(width: int | None) -> str:
    stream = io.StringIO()
    p = Progress(stream, live=True, width=width)
    p.generation_start(3, 6, {"failures": 0, "energy_spent_j": 0.0})
    for i in range(6):
        p.result(_ev(i), cached=False)
    p.generation_end({"failures": 0, "energy_spent_j": 1234.5 * 15, "front_size": 4, "hypervolume": 0.5})
    return stream.getvalue()


@pytest.mark.parametrize("width", [40, 60])
def test_each_redraw_fits_the_terminal_and_keeps_its_figures(width):
    out = _draw(width)
    assert out.count("\n") == 1 and out.endswith("\n")  # one line per generation, nothing more
    redraws = out.split("\r")[1:-1]
    assert len(redraws) == 7
    assert all(len(r) < width for r in redraws), [len(r) for r in redraws]
    if width >= 60:  # room for the figures once the bar's picture is left out
        assert redraws[-1].startswith("    gen 3 6/6 evals | 0 failed | 1.852e+04 J | front 0")
    final = out.split("\r")[-1]
    assert final.startswith("    gen 3 [########################] 6/6 evals") and "front 4 | HV 1.000× init" in final


def test_a_wide_terminal_gets_the_whole_bar():
    out = _draw(200)
    redraws = out.split("\r")[1:-1]
    assert redraws[0] == "    gen 3 [........................] 0/6 evals | 0 failed | 0 J | front 0"
    assert redraws[-1].startswith("    gen 3 [########################] 6/6 evals")


def test_a_terminal_narrowed_between_redraws_is_not_wrapped_by_the_padding():
    """The spaces that cover a longer line before are cut to the width too: after the
    terminal shrinks, a full-width pad would wrap and leave a row per redraw again."""
    stream = io.StringIO()
    p = Progress(stream, live=True, width=200)
    p.generation_start(3, 6, {"failures": 0, "energy_spent_j": 0.0})
    p.result(_ev(1), cached=False)
    p.width = 40  # the terminal is narrowed
    p.result(_ev(2), cached=False)
    last = stream.getvalue().split("\r")[-1]
    assert len(last) < 40, len(last)
