"""A genome's key names one configuration: two different ones never share it, whatever
text their values hold (a table's levels may hold "|", "=" or quotes)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gi_energy.config.genome import Genome

# Texts only: a setting's levels have one type in a space (a table column's are all numbers
# or all texts), so a text "1" and a number 1 never meet in one search.
TEXT = st.text(alphabet="ab|='\"\\ ", max_size=5)
VALUES = st.dictionaries(st.sampled_from(["a", "b", "c"]), TEXT, min_size=1)


def test_values_holding_the_keys_own_characters_do_not_merge_two_configurations():
    one = Genome(values={"a": "x|b=y", "b": "z"})
    other = Genome(values={"a": "x", "b": "y|b=z"})
    assert one.key != other.key
    assert Genome(values={"a": "'q", "b": "1'"}).key != Genome(values={"a": "q|b=1"}).key


def test_plain_values_keep_the_spelling_stored_keys_have():
    # keys already in users' stores and grid runs: unchanged for every ordinary value
    assert Genome(layers={"hidden": (64, 32)}, values={"lr": 0.001, "opt": "adam", "n": 3}).key == \
        "hidden=64-32|lr=0.001|n=3|opt=adam"
    assert Genome(values={"act": "leaky relu", "p": "1e-3"}).key == "act=leaky relu|p=1e-3"


@settings(max_examples=2000, deadline=None)
@given(VALUES, VALUES)
def test_different_values_give_different_keys(a, b):
    ga, gb = Genome(values=a), Genome(values=b)
    if ga.values != gb.values:
        assert ga.key != gb.key


def test_no_two_of_many_tricky_configurations_share_a_key():
    import itertools

    texts = ["x", "y", "z", "x|b=y", "y|b=z", "'q", "1'", "q|b=1", "", "=", "|", "'", '"', "\\", "a=b", "b=", "|b"]
    genomes = [Genome(values={"a": a, "b": b}) for a, b in itertools.product(texts, repeat=2)]
    genomes += [Genome(values={"a": a}) for a in texts]
    assert len({g.key for g in genomes}) == len(genomes)
