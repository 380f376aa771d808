import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtr

from streamal.data.space import ClassSpace, ParameterSpace
from streamal.errors import ParameterError
from streamal.policy import SweepPolicy, UniformPolicy, check_policy
from streamal.policy.uncertainty import UncertaintyMixturePolicy, mixture_weights

SPACE = ParameterSpace(
    ("a", "c", "alpha"),
    (
        ClassSpace("cubic", {"a": (3.5, 4.5)}, {"c": "a", "alpha": 90.0}),
        ClassSpace(
            "tetragonal",
            {"a": (3.8, 4.2), "c": (3.8, 4.2)},
            {"alpha": 90.0},
            min_separation={("a", "c"): 0.001},
        ),
        ClassSpace("trigonal", {"a": (3.8, 4.2), "alpha": (60.0, 120.0)}, {"c": "a"}),
    ),
)


@pytest.mark.parametrize("cls", [UniformPolicy, SweepPolicy])
def test_builtin_policies_conform(cls):
    check_policy(cls(SPACE))


def _fitted(seed=0, study=64, **opts):
    pol = UncertaintyMixturePolicy(SPACE, study_size=study, entropy_weight=0.0, **opts)
    classes, params = pol.study_set()
    rng = np.random.default_rng(seed)
    weights = rng.gamma(1.0, size=len(classes))
    return pol.fit(classes, params, weights), classes, params, weights


def test_uncertainty_policy_conforms_and_respects_constraints():
    pol, *_ = _fitted()
    check_policy(pol, n=300)
    c, p = pol.sample(2000, np.random.default_rng(1))
    tet = p[c == 1]
    assert (np.abs(tet[:, 0] - tet[:, 1]) > 0.001).all()


def test_sampler_matches_the_target_density_in_1d():
    """KS test of cubic draws against the exact CDF of the truncated mixture."""
    pol, classes, params, w = _fitted(study=40)
    rows = classes == 0
    mu, wk = params[rows, 0], w[rows]
    tau = pol.tau(0)[0]
    lo, hi = 3.5, 4.5

    def cdf(x):
        x = np.atleast_1d(x)[:, None]
        mass = wk * (ndtr((np.clip(x, lo, hi) - mu) / tau) - ndtr((lo - mu) / tau))
        total = wk * (ndtr((hi - mu) / tau) - ndtr((lo - mu) / tau))
        return mass.sum(axis=1) / total.sum()

    _, p = pol.sample(4000, np.random.default_rng(7))
    draws = p[:4000, 0]
    assert stats.kstest(draws, cdf).pvalue > 0.01
    # a sampler that ignored the weights must fail the same test
    uniform = np.random.default_rng(7).choice(mu, 4000) + tau * np.random.default_rng(8).normal(
        size=4000
    )
    uniform = uniform[(uniform > lo) & (uniform < hi)]
    assert stats.kstest(uniform, cdf).pvalue < 0.01


def test_sampler_matches_the_target_density_in_2d():
    """Chi-square of trigonal draws over a 6×6 grid against the integrated density."""
    pol, classes, params, w = _fitted(study=36)
    rows = classes == 2
    mu, wk, tau = params[rows][:, [0, 2]], w[rows], pol.tau(2)
    lo, hi = np.array([3.8, 60.0]), np.array([4.2, 120.0])
    edges = [np.linspace(lo[d], hi[d], 7) for d in range(2)]
    expected = np.zeros((6, 6))
    for m, wt in zip(mu, wk, strict=True):
        px = np.diff(ndtr((edges[0] - m[0]) / tau[0]))
        py = np.diff(ndtr((edges[1] - m[1]) / tau[1]))
        expected += wt * np.outer(px, py)
    n = 6000
    _, p = pol.sample(n, np.random.default_rng(3))
    tri = p[2 * n :]
    observed, *_ = np.histogram2d(tri[:, 0], tri[:, 2], bins=edges)
    expected *= n / expected.sum()
    assert stats.chisquare(observed.ravel(), expected.ravel()).pvalue > 0.01


def test_class_shares_follow_mass_and_total_sampling():
    pol, classes, params, w = _fitted()
    probs = pol.class_probabilities()
    c, _ = pol.sample_total(20000, np.random.default_rng(5))
    share = np.bincount(c, minlength=3) / len(c)
    np.testing.assert_allclose(share, probs, atol=0.015)
    # all weight on the trigonal class: everything lands there
    only = np.where(classes == 2, 1.0, 0.0)
    pol.fit(classes, params, only)
    c, _ = pol.sample_total(500, np.random.default_rng(0))
    assert (c == 2).all()


def test_seeded_and_deterministic():
    pol, *_ = _fitted()
    a = pol.sample_total(100, np.random.default_rng(9))
    b = pol.sample_total(100, np.random.default_rng(9))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_weights_mix_variance_and_entropy():
    w = mixture_weights(np.array([1.0, 3.0]), np.array([1.0, 1.0]), 0.5)
    np.testing.assert_allclose(w, [0.125 + 0.25, 0.375 + 0.25])
    with pytest.raises(ParameterError):
        mixture_weights(np.array([np.nan, 1.0]), None, 0.0)


def test_weight_power_sharpens_each_part_and_survives_large_powers():
    w = mixture_weights(np.array([1.0, 3.0]), np.array([1.0, 2.0]), 0.5, power=2.0)
    np.testing.assert_allclose(w, [0.5 * 1 / 10 + 0.5 * 1 / 5, 0.5 * 9 / 10 + 0.5 * 4 / 5])
    w = mixture_weights(np.array([1e-30, 2e-30]), np.array([700.0, 710.0]), 0.5, power=400.0)
    assert np.isfinite(w).all() and np.isclose(w.sum(), 1.0) and w[1] > 0.99
    np.testing.assert_allclose(mixture_weights(np.zeros(4), None, 0.0), 0.25)


def test_sample_before_fit_is_an_error():
    with pytest.raises(ParameterError, match="call fit"):
        UncertaintyMixturePolicy(SPACE).sample(3, np.random.default_rng(0))
