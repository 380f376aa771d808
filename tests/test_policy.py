import doctest

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtr

import streamal.policy.base as policy_base
from streamal import plugins
from streamal.config import parse_config
from streamal.data.space import ClassSpace, ParameterSpace
from streamal.errors import ConfigError, ParameterError, PluginError
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
    classes, params = pol.study_set(np.random.default_rng(0))
    rng = np.random.default_rng(seed)
    weights = rng.gamma(1.0, size=len(classes))
    # entropy_weight 0, weight_power 1: the mixture weights are the variances, normalised
    return pol.fit(classes, params, {"variance": weights}), classes, params, weights


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
    pol.fit(classes, params, {"variance": only})
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


# -- the interface: every built-in policy, what it needs, fit, the conformance check -----------


@pytest.mark.parametrize(
    ("name", "options"),
    [(name, {}) for name in plugins.available("policies")]
    + [("uncertainty-mixture", {"entropy_weight": 0.0, "study_size": 16, "weight_power": 3.0})],
)
def test_every_installed_policy_conforms(name, options):
    check_policy(plugins.load("policies", name)(SPACE, **options))


def test_the_module_example_runs():
    assert doctest.testmod(policy_base).failed == 0


def test_needs_and_study_set_follow_the_options():
    rng = np.random.default_rng(0)
    for model_free in (UniformPolicy(SPACE), SweepPolicy(SPACE)):
        assert model_free.needs == frozenset() and model_free.ready
        assert model_free.study_rows == 0 and model_free.study_set(rng) is None
    pol = UncertaintyMixturePolicy(SPACE, study_size=10)
    assert pol.needs == {"variance", "entropy"} and not pol.ready
    assert pol.study_rows == 30 and len(pol.study_set(rng)[0]) == 30
    assert UncertaintyMixturePolicy(SPACE, entropy_weight=0).needs == {"variance"}
    options = UncertaintyMixturePolicy.Options(entropy_weight=0.0)
    assert UncertaintyMixturePolicy.needs_for(options) == {"variance"}  # no space needed


def test_fit_without_a_needed_key_names_policy_key_and_model():
    pol = UncertaintyMixturePolicy(SPACE, study_size=8)
    classes, params = pol.study_set(np.random.default_rng(0))
    with pytest.raises(
        PluginError,
        match="policy 'uncertainty-mixture' needs the model uncertainty 'entropy', which "
        "model 'my-model' did not report",
    ):
        pol.fit(classes, params, {"variance": np.ones(len(classes))}, model="my-model")
    assert not pol.ready
    with pytest.raises(PluginError, match="'variance' from model 'm' must be 24 finite"):
        pol.fit(classes, params, {"variance": np.ones(3), "entropy": np.ones(24)}, model="m")
    pol.fit(classes, params, {"variance": np.ones(24), "entropy": np.ones(24), "extra": 1})
    assert pol.ready and pol.sample_total(5, np.random.default_rng(0))[0].shape == (5,)


def test_default_sample_total_spreads_over_classes_and_keeps_earlier_draws():
    pol = UniformPolicy(SPACE)
    classes, _ = pol.sample_total(7, np.random.default_rng(0))
    assert np.bincount(classes, minlength=3).tolist() == [3, 2, 2]
    total = pol.sample_total(9, np.random.default_rng(3))
    per_class = pol.sample(3, np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(total, per_class, strict=True))


class _OutOfTheBox(UniformPolicy):
    name = "out-of-the-box"

    def _sample(self, n_per_class, rng):
        classes, params = super()._sample(n_per_class, rng)
        return classes, params + 100.0


class _Unseeded(UniformPolicy):
    name = "unseeded"

    def _sample(self, n_per_class, rng):
        return super()._sample(n_per_class, np.random.default_rng())


class _NoStudySet(UncertaintyMixturePolicy):
    name = "no-study-set"

    def _study_set(self, rng):
        return None


class _TooFew(UniformPolicy):
    name = "too-few"

    def _sample_total(self, n, rng):
        classes, params = self.sample(n, rng)
        return classes[: n - 1], params[: n - 1]


@pytest.mark.parametrize(
    ("cls", "error", "match"),
    [
        (_OutOfTheBox, ParameterError, "sample 0"),
        (_Unseeded, AssertionError, "not deterministic"),
        (_NoStudySet, PluginError, "study_set\\(\\) returned None"),
        (_TooFew, PluginError, "expected \\(50,\\)"),
    ],
)
def test_check_policy_catches_broken_policies(cls, error, match):
    with pytest.raises(error, match=match):
        check_policy(cls(SPACE))


# -- validate: the model must report what the policy needs -------------------------------------


class VarianceOnlyModel:
    """A model plugin's class as validate sees it (``tests.test_policy:VarianceOnlyModel``)."""

    name = "variance-only"
    uncertainties = frozenset({"variance"})


class SilentModel:
    """A model class that declares no ``uncertainties`` (it reports none)."""

    name = "silent"


def _config(model, policy=None, workflow="serial"):
    data = {
        "name": "needs",
        "simulator": {"name": "tests.helpers:PeaksSimulator"},
        "model": {"name": f"tests.test_policy:{model}"},
        "workflow": {"name": workflow, "phases": [{"samples": 4, "epochs": 1}]},
    }
    if policy is not None:
        data["policy"] = policy
    return data


def _problems(data):
    try:
        parse_config(data, check_node=False)
    except ConfigError as err:
        return str(err).splitlines()[1:]
    return []


def test_validate_refuses_a_model_without_the_uncertainty_the_policy_needs():
    line = (
        "  model.name: model 'tests.test_policy:VarianceOnlyModel' reports no uncertainty "
        "'entropy', which policy 'uncertainty-mixture' needs (set "
        "policy.options.entropy_weight: 0, or use a model that provides it)"
    )
    assert _problems(_config("VarianceOnlyModel", {"name": "uncertainty-mixture"})) == [line]
    assert _problems(_config("VarianceOnlyModel")) == [line]  # the AL workflows' default
    fixed = {"name": "uncertainty-mixture", "options": {"entropy_weight": 0}}
    assert _problems(_config("VarianceOnlyModel", fixed)) == []
    missing = [
        p.split("reports no uncertainty ")[1][:10] for p in _problems(_config("SilentModel"))
    ]
    assert missing == ["'entropy',", "'variance'"]


def test_validate_accepts_what_needs_no_model_uncertainty():
    assert _problems(_config("SilentModel", {"name": "uniform"})) == []
    assert _problems(_config("SilentModel", workflow="baseline")) == []  # no policy at all
    unknown = _problems(_config("VarianceOnlyModel", {"name": "nope"}))
    assert len(unknown) == 1 and unknown[0].startswith("  policy.name: unknown policy 'nope'")
