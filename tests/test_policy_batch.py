"""The batch policies ``uncertainty-topk`` and ``uncertainty-diverse``: which study points a
batch goes to, and that each sample is drawn next to its point, inside its class's box."""

import numpy as np
import pytest
from pydantic import ValidationError

from streamal import plugins
from streamal.data.space import ClassSpace, ParameterSpace
from streamal.errors import ParameterError
from streamal.policy import check_policy
from streamal.policy.diverse import DiverseUncertaintyPolicy
from streamal.policy.topk import TopKUncertaintyPolicy
from streamal.policy.uncertainty import UncertaintyMixturePolicy, mixture_weights
from tests.test_policy import SPACE, _config, _problems

# Two 1-D classes. With study_size s, class a's study points are (i + ½)/s and class b's are
# twice that, so row i of class a and row s + i of class b sit at the same place in their
# unit boxes.
TWO = ParameterSpace(
    ("x",), (ClassSpace("a", {"x": (0.0, 1.0)}), ClassSpace("b", {"x": (0.0, 2.0)}))
)
BOTH = [TopKUncertaintyPolicy, DiverseUncertaintyPolicy]


def _fitted(cls, variance, **options):
    """``cls`` on TWO with ``len(variance) // 2`` study points per class, told ``variance``
    (entropy_weight 0, weight_power 1: the scores are the variances, normalised)."""
    variance = np.asarray(variance, dtype=float)
    pol = cls(TWO, study_size=len(variance) // 2, entropy_weight=0.0, **options)
    classes, params = pol.study_set(np.random.default_rng(0))
    return pol.fit(classes, params, {"variance": variance}), classes, params[:, 0]


def _nearest(classes, x, study_classes, study_x):
    """The study row of each sample's class nearest to it."""
    far = np.where(study_classes[None, :] == classes[:, None], 0.0, np.inf)
    return np.argmin(np.abs(x[:, None] - study_x[None, :]) + far, axis=1)


# -- the interface ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", BOTH)
@pytest.mark.parametrize("options", [{}, {"study_size": 5, "entropy_weight": 0.0}])
def test_they_conform_and_are_installed(cls, options):
    check_policy(cls(SPACE, **options))
    check_policy(cls(TWO, **options), n=40)
    assert plugins.load("policies", cls.name) is cls


@pytest.mark.parametrize("cls", BOTH)
def test_sampling_before_fit_is_the_mixtures_error(cls):
    rng = np.random.default_rng(0)
    for call in (lambda p: p.sample_total(3, rng), lambda p: p.sample(3, rng)):
        with pytest.raises(ParameterError) as mixture:
            call(UncertaintyMixturePolicy(TWO))
        with pytest.raises(ParameterError) as err:
            call(cls(TWO))
        assert str(err.value) == str(mixture.value).replace("uncertainty-mixture", cls.name)
    with pytest.raises(ParameterError, match="call fit"):
        cls(TWO).choose(3, rng)


@pytest.mark.parametrize("cls", BOTH)
def test_needs_study_set_and_weights_are_the_mixtures(cls):
    pol = cls(SPACE, study_size=10)
    assert pol.needs == {"variance", "entropy"} and pol.study_rows == 30
    assert cls.needs_for(cls.Options(entropy_weight=0)) == {"variance"}
    assert cls.optional_needs == {"entropy": "entropy_weight: 0"}
    rng = np.random.default_rng(0)
    mine, theirs = pol.study_set(rng), UncertaintyMixturePolicy(SPACE, study_size=10).study_set(rng)
    assert all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))
    variance, entropy = np.random.default_rng(1).gamma(1.0, size=(2, 30))
    pol.fit(*mine, {"variance": variance, "entropy": entropy})
    np.testing.assert_allclose(pol.weights_, mixture_weights(variance, entropy, 0.5))


@pytest.mark.parametrize("cls", BOTH)
@pytest.mark.parametrize("n", [1, 7, 40])
def test_each_sample_takes_its_study_points_class(cls, n):
    variance = np.random.default_rng(2).gamma(1.0, size=16)
    pol, study_classes, study_x = _fitted(cls, variance, tau_factor=0.1)
    rows = pol.choose(n, np.random.default_rng(3))
    classes, params = pol.sample_total(n, np.random.default_rng(3))
    assert classes.shape == (n,) and params.shape == (n, 1)
    assert np.array_equal(classes, study_classes[rows])
    assert np.array_equal(_nearest(classes, params[:, 0], study_classes, study_x), rows)
    per_class = pol.sample(n, np.random.default_rng(4))
    assert np.bincount(per_class[0]).tolist() == [n, n]


@pytest.mark.parametrize("cls", BOTH)
def test_the_same_seed_gives_the_same_batch(cls):
    pol, *_ = _fitted(cls, np.random.default_rng(5).gamma(1.0, size=16))
    a, b = (pol.sample_total(9, np.random.default_rng(6)) for _ in range(2))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_bad_options_are_one_line_naming_the_key():
    with pytest.raises(ValidationError, match="diversity_power"):
        DiverseUncertaintyPolicy(TWO, diversity_power=-1)

    def problems(name, options):
        policy = {"name": name, "options": {"entropy_weight": 0, **options}}
        return _problems(_config("VarianceOnlyModel", policy))

    assert problems("uncertainty-diverse", {"diversity_power": -1}) == [
        "  policy.options.diversity_power: must be >= 0.0 (got -1)"
    ]
    (line,) = problems("uncertainty-diverse", {"diversity": 2})
    assert line.startswith("  policy.options.diversity: unknown key; allowed: entropy_weight")
    assert line.endswith("diversity_power")
    (line,) = problems("uncertainty-topk", {"diversity_power": 2})  # top-k has no such option
    assert line.startswith("  policy.options.diversity_power: unknown key")
    assert problems("uncertainty-diverse", {"diversity_power": 0}) == []


# -- top-k ------------------------------------------------------------------------------------

#: Scores with a known ranking: rows 3, 12, 6, then the tie 2 = 10 (the lower row first).
RANKED = np.array([0.1, 0.2, 5.0, 9.0, 0.3, 0.4, 7.0, 0.5, 0.6, 0.7, 5.0, 0.8, 8.0, 0.9, 1.0, 1.1])


def test_topk_takes_the_highest_scored_study_points():
    pol, study_classes, study_x = _fitted(TopKUncertaintyPolicy, RANKED, tau_factor=0.1)
    classes, params = pol.sample_total(5, np.random.default_rng(0))
    assert _nearest(classes, params[:, 0], study_classes, study_x).tolist() == [3, 12, 6, 2, 10]
    assert classes.tolist() == [0, 1, 0, 0, 1]
    tau = np.array([pol.tau(k)[0] for k in classes])
    assert (np.abs(params[:, 0] - study_x[[3, 12, 6, 2, 10]]) < 4 * tau).all()
    c, p = pol.sample(2, np.random.default_rng(0))  # per class: its own top 2
    assert _nearest(c, p[:, 0], study_classes, study_x).tolist() == [3, 6, 12, 10]


def test_topk_past_the_study_set_cycles_through_the_ranking():
    pol, study_classes, study_x = _fitted(TopKUncertaintyPolicy, RANKED, tau_factor=0.1)
    classes, params = pol.sample_total(16 + 3, np.random.default_rng(0))
    rows = _nearest(classes, params[:, 0], study_classes, study_x)
    assert rows[16:].tolist() == [3, 12, 6] and rows[:3].tolist() == [3, 12, 6]
    assert np.bincount(rows, minlength=16).tolist() == [
        2 if r in (3, 12, 6) else 1 for r in range(16)
    ]


def test_topk_draws_stay_in_the_box_and_spread_with_tau():
    """A wide τ: without truncation to the box many draws would fall out of it."""
    pol, _, study_x = _fitted(TopKUncertaintyPolicy, np.ones(16), tau_factor=3.0)
    classes, params = pol.sample_total(16 * 100, np.random.default_rng(1))
    TWO.check(classes, params)
    rows = np.tile(np.arange(16), 100)  # all tied: the ranking is the row order, cycled
    tau = np.array([pol.tau(k)[0] for k in classes])
    offset = np.abs(params[:, 0] - study_x[rows])
    assert (offset < 4 * tau).all() and np.median(offset / tau) > 0.3


# -- diverse ----------------------------------------------------------------------------------


def _clusters():
    """Class a, 20 study points: two tight pairs of high variance, A (rows 2, 3) slightly
    above B (rows 15, 16); everything else low."""
    variance = np.full(40, 0.001)
    variance[[2, 3, 15, 16]] = [1.02, 1.01, 1.0, 1.0]
    return variance


def _batches(pol, study_classes, study_x, seeds=200):
    """The study rows of ``seeds`` batches of 2, each from its own seed."""
    out = []
    for seed in range(seeds):
        c, p = pol.sample_total(2, np.random.default_rng(seed))
        out.append(sorted(_nearest(c, p[:, 0], study_classes, study_x)))
    return np.array(out)


def test_diverse_takes_one_point_from_each_cluster_where_topk_takes_one_cluster():
    pol, sc, sx = _fitted(TopKUncertaintyPolicy, _clusters(), tau_factor=0.1)
    assert (_batches(pol, sc, sx, seeds=5) == [2, 3]).all()  # top-k: both from cluster A
    pol, sc, sx = _fitted(DiverseUncertaintyPolicy, _clusters(), tau_factor=0.1)
    batches = _batches(pol, sc, sx)
    split = np.isin(batches[:, 0], [2, 3]) & np.isin(batches[:, 1], [15, 16])
    assert split.mean() > 0.85, split.mean()  # about 0.95
    # without diversity the pair is drawn in proportion to the score: about 0.65 split
    pol, sc, sx = _fitted(DiverseUncertaintyPolicy, _clusters(), tau_factor=0.1, diversity_power=0)
    batches = _batches(pol, sc, sx)
    split = np.isin(batches[:, 0], [2, 3]) & np.isin(batches[:, 1], [15, 16])
    assert 0.5 < split.mean() < 0.8, split.mean()


def _pair_frequencies(pol, draws=4000):
    rng = np.random.default_rng(7)
    pairs = np.sort([pol.choose(2, rng) for _ in range(draws)], axis=1)
    n = len(pol.weights_)
    return np.bincount(pairs[:, 0] * n + pairs[:, 1], minlength=n * n).reshape(n, n) / draws


def test_diversity_power_0_is_score_proportional_choice_without_replacement():
    score = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 2.0])
    pol, *_ = _fitted(DiverseUncertaintyPolicy, score, diversity_power=0)
    rng = np.random.default_rng(8)
    first = np.bincount([pol.choose(1, rng)[0] for _ in range(4000)], minlength=8) / 4000
    np.testing.assert_allclose(first, score / score.sum(), atol=0.03)
    p = score / score.sum()
    ordered = p[:, None] * p[None, :] / (1 - p[:, None])
    np.fill_diagonal(ordered, 0)
    expected = np.triu(ordered + ordered.T)
    np.testing.assert_allclose(_pair_frequencies(pol), expected, atol=0.03)
    # with diversity the neighbours 2 and 3 (D² = 1/16) are rarely taken together
    pol, *_ = _fitted(DiverseUncertaintyPolicy, score)
    assert expected[2, 3] > 0.2 and _pair_frequencies(pol)[2, 3] < 0.05


def test_diverse_counts_another_class_as_the_largest_distance():
    """Row 4 (class b) sits where row 0 (class a) does in its unit box; row 1 is row 0's
    neighbour. Across classes D = 1, so 0 and 1 are seldom taken together (≈ 0.04) and each
    goes with 4 about half the time (≈ 0.48)."""
    score = np.zeros(8)
    score[[0, 1, 4]] = 1.0
    pol, *_ = _fitted(DiverseUncertaintyPolicy, score)
    freq = _pair_frequencies(pol)
    assert freq[0, 1] < 0.08
    np.testing.assert_allclose([freq[0, 4], freq[1, 4]], 0.48, atol=0.05)


def test_diverse_past_the_study_set_takes_every_point_before_any_twice():
    pol, *_ = _fitted(DiverseUncertaintyPolicy, np.random.default_rng(9).gamma(1.0, size=16))
    rows = pol.choose(16 + 5, np.random.default_rng(0))
    assert sorted(rows[:16]) == list(range(16)) and len(set(rows[16:])) == 5
