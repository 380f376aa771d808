"""Ask/tell strategies: NSGA-II through pymoo, regularized evolution with one-bit mutations."""

import numpy as np
import pytest

from streamal_nas.genome import MacroGenome
from streamal_nas.strategies import (
    NSGA2Strategy,
    RegularizedEvolution,
    hypervolume,
    make_strategy,
    pareto_indices,
)


def _objectives(c):
    bits = c.genome.to_vector()
    return [float(bits[: len(bits) // 2].sum()), float(bits[len(bits) // 2 :].sum())]


def test_nsga2_asks_valid_unique_genomes_one_generation_at_a_time():
    s = NSGA2Strategy(population=6, phases=3, nodes=4, seed=3)
    first = s.ask(4) + s.ask(4)
    assert len(first) == 6 and s.ask(1) == []  # the generation is not told yet
    assert all(isinstance(c.genome, MacroGenome) and c.genome.phases == 3 for c in first)
    assert len({c.genome.key() for c in first}) == 6
    s.tell(first[:3], [_objectives(c) for c in first[:3]])
    assert s.ask(1) == []
    s.tell(first[3:], [_objectives(c) for c in first[3:]])
    second = s.ask(10)
    assert len(second) == 6 and {c.generation for c in second} == {1}
    assert not {c.id for c in first} & {c.id for c in second}


def test_nsga2_tell_ranks_the_population_with_pymoo_non_dominated_sorting():
    s = NSGA2Strategy(population=8, seed=0)
    batch = s.ask(8)
    f = np.array([_objectives(c) for c in batch])
    s.tell(batch, f)
    pop = s.algorithm_.pop  # reordered by pymoo's survival
    ranked = {
        MacroGenome.from_vector(x, 3, 4).key()
        for x, r in zip(pop.get("X"), pop.get("rank"), strict=True)
        if r == 0
    }
    front = set(pareto_indices(f).tolist())
    brute = {
        i
        for i in range(len(f))
        if not any((f[j] <= f[i]).all() and (f[j] < f[i]).any() for j in range(len(f)))
    }
    assert front == brute
    assert ranked == {batch[i].genome.key() for i in brute}


def test_tell_checks_its_inputs():
    s = make_strategy("nsga2", population=4, seed=0)
    batch = s.ask(4)
    with pytest.raises(ValueError, match="objectives per candidate"):
        s.tell(batch[:1], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="finite"):
        s.tell(batch[:1], [[np.nan, 1.0]])
    s.tell(batch[:1], [[1.0, 1.0]])
    with pytest.raises(ValueError, match="already told"):
        s.tell(batch[:1], [[1.0, 1.0]])


def test_regularized_evolution_child_differs_from_parent_by_exactly_one_choice():
    s = RegularizedEvolution(population=5, sample=2, seed=1)
    genomes = {}
    rng = np.random.default_rng(0)
    for told in range(30):
        (c,) = s.ask(1)
        genomes[c.id] = c.genome
        if told < 5:  # the first N are random
            assert c.parent_id is None
        else:
            assert c.parent_id in genomes
            assert c.genome.hamming(genomes[c.parent_id]) == 1
        s.tell([c], [[rng.random(), rng.random()]])
        assert len(s.population_) == min(told + 1, 5)
    last_five = [c.id for c, _ in s.history_[-5:]]
    assert [c.id for c, _ in s.population_] == last_five  # aging: the oldest left


def test_regularized_evolution_tournament_of_whole_population_picks_the_best():
    s = RegularizedEvolution(population=4, sample=4, seed=2)
    first = s.ask(4)
    errors = [30.0, 5.0, 20.0, 10.0]
    s.tell(first, [[e, 1.0] for e in errors])
    for c in s.ask(3):
        assert c.parent_id == first[1].id


def test_hypervolume_uses_a_fixed_reference():
    f = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.9]])
    assert hypervolume(f, [1.0, 1.0]) == pytest.approx(0.8 * 0.2 + 0.5 * 0.3)
    assert hypervolume(f[2:] + 1, [1.0, 1.0]) == 0.0
