"""PENGUIN prediction engine: Table 2 curves, Alg. 1 fitting, Alg. 2 analyzer, decoupled use."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from streamal.errors import ConfigError, PluginError
from streamal_nas.options import PredictionOptions
from streamal_nas.prediction import (
    CURVES,
    Curve,
    Decision,
    NeverLearningRule,
    PredictionConfig,
    PredictionEngine,
    PredictionJob,
    analyze_records,
    append_record,
    check_curve,
    decision_path,
    fit_curve,
    get_curve,
    poll_decision,
    prediction_config,
    read_all_decisions,
    read_decisions,
    read_records,
    register_curve,
    run_prediction_engine,
    write_decisions,
)

# Table 2 of the paper, written out independently of the implementation: formula -> trend.
TABLE2 = {
    "a*x^b": "increasing",
    "a*x^b + c": "increasing",
    "a - b^(c - x)": "increasing",
    "a*log(x) + c": "increasing",
    "a*e^(b*x) + c": "increasing",
    "e^(a + b/x + c*log(x))": "increasing",
    "(a*b + c*x^d)/(b + x^d)": "increasing",
    "c - b*e^(-a*x^d)": "increasing",
    "c - e^(-a*x^d + b)": "increasing",
    "c - e^((x - b)^a)": "increasing",
    "c - (-a*x + b)^(-d)": "increasing",
    "c - a/log(x)": "increasing",
    "c - (c - a)*e^(-b*x)": "increasing",
    "a*x^(-b)": "decreasing",
    "a*x^(-b) + c": "decreasing",
    "-a*log(x) + c": "decreasing",
    "a*e^(-b*x) + c": "decreasing",
    "a*e^(-b*x)": "decreasing",
    "-a*x + b": "decreasing",
}

# Parameters inside each curve's bounds, away from its initial values.
TRUE_PARAMS = {
    "pow2": (20.0, 0.4),
    "pow3": (-60.0, -0.7, 75.0),
    "exp_base": (70.0, 1.4, 8.0),
    "log2": (12.0, 20.0),
    "exp3": (-60.0, -0.3, 70.0),
    "vap3": (4.3, -2.0, 0.05),
    "mmf4": (5.0, 20.0, 80.0, 1.5),
    "wbl4": (0.2, 60.0, 75.0, 0.8),
    "exp4": (0.3, 4.0, 70.0, 0.9),
    "expp3": (-2.5, 0.4, 75.0),
    "pow4": (-0.3, 0.05, 70.0, 3.0),
    "ilog2": (15.0, 60.0),
    "expd3": (10.0, 0.25, 65.0),
    "pow2_dec": (2.3, 0.4),
    "pow3_dec": (2.0, 0.8, 0.3),
    "log2_dec": (0.5, 2.3),
    "exp3_dec": (2.0, 0.2, 0.4),
    "exp2_dec": (2.2, 0.1),
    "lin2_dec": (0.03, 2.3),
}

BUILTIN = [c for c in CURVES.values() if c.name in TRUE_PARAMS]
E = 0.5  # epochs per iteration, as in the paper


def _eval_formula(curve: Curve, x: np.ndarray, params: tuple[float, ...]) -> np.ndarray:
    """Evaluate the human-readable formula string (independently of ``Curve.fn``)."""
    expr = curve.formula.replace("e^(", "exp(").replace("^", "**")
    letters = list(inspect.signature(curve.fn).parameters)[1:]  # after x
    names = dict(zip(letters, params, strict=True))
    return eval(expr, {"exp": np.exp, "log": np.log, "x": x, **names})  # noqa: S307


def _feed(job: PredictionJob, values: list[float] | np.ndarray, e: float = E) -> Decision | None:
    """Record ``values`` at epochs e, 2e, ... until the job stops."""
    for i, v in enumerate(values, start=1):
        if job.record(i * e, float(v)) is not None:
            break
    return job.decision


def _saturating(a: float, b: float, c: float, sigma: float, seed: int, n: int = 40) -> np.ndarray:
    """``a - b^(c - x)`` at x = 1..n (rescaled epochs) plus Gaussian noise."""
    x = np.arange(1, n + 1, dtype=float)
    return a - b ** (c - x) + np.random.default_rng(seed).normal(0.0, sigma, n)


def _rule_holds(preds: list[float], n: int, t: float) -> bool:
    last = np.array(preds[-n:])
    return len(last) == n and bool(np.all(np.abs(last - last.mean()) <= t))


# -- Table 2 curves -------------------------------------------------------------------------
def test_registry_holds_exactly_table2() -> None:
    assert {c.formula: c.trend for c in BUILTIN} == TABLE2
    assert len(BUILTIN) == 19
    assert get_curve("exp_base").formula == "a - b^(c - x)"
    # the paper's default: b >= 1, and the authors' bounds and initial values
    assert get_curve("exp_base").bounds == ((0.5, 1.0, 0.0), (102.5, math.inf, math.inf))
    assert get_curve("exp_base").p0 == (10.0, 1.001, 100.0)


@pytest.mark.parametrize("curve", BUILTIN, ids=lambda c: c.name)
def test_builtin_curve_conforms_and_matches_its_formula_and_trend(curve: Curve) -> None:
    check_curve(curve)
    params = TRUE_PARAMS[curve.name]
    lo, hi = curve.bounds
    assert all(low <= p <= high for p, low, high in zip(params, lo, hi, strict=True))
    x = np.arange(1.5, 41.0, 0.5)
    y = curve(x, *params)
    np.testing.assert_allclose(y, _eval_formula(curve, x, params), rtol=1e-12)
    steps = np.diff(y)
    assert np.all(steps > 0) if curve.trend == "increasing" else np.all(steps < 0)


@pytest.mark.parametrize("curve", BUILTIN, ids=lambda c: c.name)
def test_builtin_curve_fits_its_own_noiseless_curve(curve: Curve) -> None:
    params = TRUE_PARAMS[curve.name]
    x = np.arange(1.0, 21.0)  # rescaled epochs: E = 0.5 and 10 epochs
    with np.errstate(divide="ignore"):  # ilog2 is undefined at x = 1; fit_curve skips it
        y = curve(x, *params)
    res = fit_curve(curve, x, y)
    assert res.ok, res.error
    used = x if curve.x_min is None else x[x > curve.x_min]
    fitted = curve(used, *res.params)
    target = curve(used, *params)
    scale = np.ptp(target)
    np.testing.assert_allclose(fitted, target, atol=1e-6 * scale)
    assert res.n_points == used.size
    assert res.rss == pytest.approx(0.0, abs=1e-10 * scale**2)


# -- fitting failures are recorded ----------------------------------------------------------
def _raising(x: np.ndarray, a: float) -> np.ndarray:
    raise ZeroDivisionError("boom")


def test_fit_failures_are_recorded_not_raised() -> None:
    exp_base = get_curve("exp_base")
    x = np.arange(1.0, 11.0)
    y = exp_base(x, 70.0, 1.5, 6.0)
    assert fit_curve(exp_base, x, y).ok
    too_few = fit_curve(exp_base, x[:2], y[:2])
    assert not too_few.ok and "2 usable points" in too_few.error
    all_nan = fit_curve(exp_base, x, np.full_like(x, np.nan))
    assert not all_nan.ok and all_nan.params is None
    budget = fit_curve(exp_base, x, y, max_nfev=1)
    assert not budget.ok and "RuntimeError" in budget.error
    bad = Curve("raising", "?", _raising, (1.0,), ((0.0,), (2.0,)))
    res = fit_curve(bad, x, y)
    assert not res.ok and "ZeroDivisionError" in res.error
    mismatch = fit_curve(exp_base, x, y[:-1])
    assert not mismatch.ok


def test_engine_survives_failing_fits_and_falls_back_to_actual_fitness() -> None:
    job = PredictionEngine(PredictionConfig(e_pred=5.0, max_nfev=1)).job("m")
    values = _saturating(70.0, 1.5, 6.0, 0.0, seed=0)
    decision = _feed(job, values)
    assert decision is not None and decision.reason == "max-epochs"
    assert decision.stop_epoch == 5.0
    assert decision.fitness == pytest.approx(values[9])  # fit_V at e_pred (x = 10)
    assert not decision.converged and decision.predicted_fitness is None
    fitted = [h for h in job.history if h.fits]
    assert fitted and all(h.selection == "failed" and h.prediction is None for h in fitted)
    assert all(not f.ok and f.error for h in fitted for f in h.fits)


# -- Alg. 2 ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "c"), [(70.0, 2.0, 6.0), (85.0, 2.0, 6.5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_saturating_curve_converges_near_its_asymptote(
    a: float, b: float, c: float, seed: int
) -> None:
    cfg = PredictionConfig()  # the paper's N = 3, t = 0.5, E = 0.5, e_pred = 20
    job = PredictionEngine(cfg).job("c")
    decision = _feed(job, _saturating(a, b, c, sigma=0.1, seed=seed))
    assert decision is not None and decision.reason == "converged" and decision.converged
    assert decision.stop_epoch < cfg.e_pred / 2
    assert abs(decision.fitness - a) <= cfg.tolerance
    # Alg. 2 checked independently from the recorded history: the rule holds at the stop
    # and did not hold at any earlier epoch past N * E with a valid prediction.
    preds: list[float] = []
    for h in job.history:
        if h.prediction is not None:
            preds.append(h.prediction)
        at_stop = h.epoch == decision.stop_epoch
        eligible = h.epoch > cfg.n_predictions * E and h.prediction is not None
        assert (eligible and _rule_holds(preds, cfg.n_predictions, cfg.tolerance)) == at_stop
    assert decision.fitness == job.history[-1].prediction
    assert decision.curve == "exp_base" and job.history[-1].selection == "single"


def test_noisier_curve_still_stops_within_the_rule() -> None:
    cfg = PredictionConfig()
    job = PredictionEngine(cfg).job("c")
    decision = _feed(job, _saturating(65.0, 1.3, 12.0, sigma=0.3, seed=4))
    assert decision is not None and decision.reason == "converged"
    preds = [h.prediction for h in job.history if h.prediction is not None]
    assert _rule_holds(preds, cfg.n_predictions, cfg.tolerance)
    assert cfg.valid_range[0] <= decision.fitness <= cfg.valid_range[1]


def test_no_decision_before_n_times_e_and_n_predictions() -> None:
    # exact data: the first fit (3 points, e = 1.5) already predicts exactly
    values = _saturating(70.0, 2.0, 6.0, 0.0, seed=0)
    one = PredictionEngine(PredictionConfig(n_predictions=1)).job("a")
    assert _feed(one, values).stop_epoch == 1.5  # e > N * E = 0.5 and one prediction
    three = PredictionEngine(PredictionConfig(n_predictions=3)).job("b")
    assert _feed(three, values).stop_epoch == 2.5  # predictions at 1.5, 2.0, 2.5
    assert [h.selection for h in three.history[:2]] == ["insufficient-data"] * 2
    # records every E/2: three predictions by e = 1.25, but line 3 waits until e > 1.5
    fine = PredictionEngine(PredictionConfig(n_predictions=3)).job("c")
    x = np.arange(1, 41) / 2  # rescaled epochs of records at 0.25, 0.5, ...
    decision = _feed(fine, 70.0 - 2.0 ** (6.0 - x), e=E / 2)
    assert decision.stop_epoch == 1.75 and decision.reason == "converged"
    assert sum(h.prediction is not None for h in fine.history if h.epoch <= 1.5) == 4


def test_invalid_predictions_never_converge() -> None:
    values = _saturating(70.0, 2.0, 6.0, 0.0, seed=0)
    ok = _feed(PredictionEngine().job("a"), values)
    assert ok.reason == "converged" and ok.fitness == pytest.approx(70.0, abs=1e-3)
    capped = _feed(PredictionEngine(PredictionConfig(valid_range=(0.0, 50.0))).job("b"), values)
    assert capped.reason == "max-epochs" and capped.stop_epoch == 20.0
    assert capped.fitness == pytest.approx(values[39])
    assert capped.predicted_fitness == pytest.approx(70.0, abs=1e-3)


def test_still_rising_curve_runs_to_e_pred_and_reports_actual_fitness() -> None:
    values = 5.0 + 4.0 * np.arange(1, 41)  # linear growth: predictions keep moving
    cfg = PredictionConfig(e_pred=10.0)
    job = PredictionEngine(cfg).job("r")
    decision = _feed(job, values)
    assert decision.reason == "max-epochs" and not decision.converged
    assert decision.stop_epoch == 10.0 and decision.actual_fitness == values[19]
    assert decision.fitness == values[19]
    assert len(job.history) == 20
    assert job.record(10.5, 99.0) is decision and len(job.history) == 20  # ignored


def test_epoch_rescaling_makes_predictions_independent_of_e() -> None:
    values = _saturating(60.0, 1.6, 8.0, 0.2, seed=3)
    jobs = []
    for e in (1.0, 0.25):
        cfg = PredictionConfig(epochs_per_iteration=e, e_pred=40 * e)
        job = PredictionEngine(cfg).job("x")
        _feed(job, values, e=e)
        jobs.append(job)
    h1, h2 = jobs[0].history, jobs[1].history
    assert len(h1) == len(h2) and jobs[0].decision.reason == jobs[1].decision.reason
    for u, v in zip(h1, h2, strict=True):
        assert v.epoch == u.epoch / 4
        assert (u.prediction is None) == (v.prediction is None)
        if u.prediction is not None:
            assert v.prediction == pytest.approx(u.prediction, rel=1e-9)


def test_fraction_scale_gives_the_percent_decision_scaled() -> None:
    values = _saturating(70.0, 1.8, 7.0, 0.2, seed=1)
    pct = _feed(PredictionEngine().job("p"), values)
    frac = _feed(PredictionEngine(PredictionConfig.fraction()).job("f"), values / 100.0)
    assert frac.reason == pct.reason and frac.stop_epoch == pct.stop_epoch
    assert frac.fitness == pytest.approx(pct.fitness / 100.0, rel=1e-6)


def test_several_curves_pick_the_lowest_residual_fit() -> None:
    log2 = get_curve("log2")
    values = log2(np.arange(1, 41, dtype=float), 12.0, 20.0)  # keeps rising: log growth
    cfg = PredictionConfig(curves=("exp_base", "pow3", "log2"), e_pred=8.0)
    job = PredictionEngine(cfg).job("m")
    _feed(job, values)
    late = job.history[-1]
    assert late.selection == "min-rss" and late.curve == "log2"
    assert late.prediction == pytest.approx(log2(8.0 / E, 12.0, 20.0), rel=1e-6)
    for h in job.history:
        ok = [f for f in h.fits if f.ok]
        if ok:
            assert h.curve == min(ok, key=lambda f: f.rss).curve


# -- never-learning -------------------------------------------------------------------------
def test_never_learning_curve_stops_early_with_the_paper_analyzer() -> None:
    cfg = PredictionConfig()  # no extra rule: the paper's Alg. 2 alone
    rng = np.random.default_rng(0)
    flat = np.clip(1.0 + rng.normal(0.0, 0.3, 40), 0.0, 100.0)  # CIFAR-100 chance level
    decision = _feed(PredictionEngine(cfg).job("n"), flat)
    assert decision.reason == "converged"
    assert decision.stop_epoch <= cfg.e_pred / 4
    assert abs(decision.fitness - 1.0) <= 1.0


def test_never_learning_rule_stops_a_noisy_flat_curve_earlier() -> None:
    rng = np.random.default_rng(8)
    flat = np.clip(10.0 + rng.normal(0.0, 3.0, 40), 0.0, 100.0)  # chance 10%, noisy
    paper = _feed(PredictionEngine().job("n"), flat)
    rule = NeverLearningRule(floor=20.0, min_epoch=3.0)
    cfg = PredictionConfig(never_learning=rule)
    job = PredictionEngine(cfg).job("n")
    decision = _feed(job, flat)
    assert decision.reason == "never-learning" and not decision.converged
    assert decision.stop_epoch == 3.0 < paper.stop_epoch
    assert decision.fitness <= 20.0
    # a learning curve is never stopped by the rule
    learner = _feed(PredictionEngine(cfg).job("l"), _saturating(70.0, 2.0, 6.0, 0.1, seed=0))
    assert learner.reason == "converged"


# -- configuration --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_predictions": 0},
        {"tolerance": -1.0},
        {"epochs_per_iteration": 0.0},
        {"e_pred": 1.5},  # must exceed N * E
        {"curves": ()},
        {"curves": ("no-such-curve",)},
        {"valid_range": (1.0, 0.0)},
        {"fitness_scale": 0.0},
        {"max_nfev": 0},
        {"variant": "penguin"},
        {"direction": "up"},
        {"curves": ("exp_base_dec",)},  # a decreasing curve to maximize
    ],
)
def test_bad_configuration_is_named(kwargs: dict[str, object]) -> None:
    with pytest.raises((ConfigError, PluginError)) as err:
        PredictionConfig(**kwargs)
    assert next(iter(kwargs)).split("_")[0] in str(err.value) or "curve" in str(err.value)


def test_record_rejects_non_increasing_epochs() -> None:
    job = PredictionEngine().job("x")
    job.record(0.5, 10.0)
    with pytest.raises(ValueError, match="after the previous epoch"):
        job.record(0.5, 11.0)


# -- user-supplied curves -------------------------------------------------------------------
def _logistic(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return c / (1.0 + np.exp(-a * (x - b)))


@pytest.fixture
def logistic() -> Iterator[Curve]:
    curve = Curve(
        "logistic3",
        "c/(1 + e^(-a*(x - b)))",
        _logistic,
        (0.5, 5.0, 50.0),
        ((0.0, -50.0, 0.0), (10.0, 50.0, 102.5)),
        x_min=None,
    )
    yield curve
    CURVES.pop(curve.name, None)


def test_user_curve_registration(logistic: Curve) -> None:
    with pytest.raises(PluginError, match="logistic3"):
        PredictionConfig(curves=("logistic3",))
    assert register_curve(logistic) is logistic and get_curve("logistic3") is logistic
    with pytest.raises(PluginError, match="already registered"):
        register_curve(logistic)
    values = _logistic(np.arange(1, 41, dtype=float), 0.8, 4.0, 72.0)
    job = PredictionEngine(PredictionConfig(curves=("logistic3",))).job("u")
    decision = _feed(job, values)
    assert decision.reason == "converged" and decision.curve == "logistic3"
    assert decision.fitness == pytest.approx(_logistic(40.0, 0.8, 4.0, 72.0), abs=1e-3)
    # an unregistered Curve object may be passed directly as well
    other = Curve(
        "logistic_unregistered",
        logistic.formula,
        _logistic,
        logistic.p0,
        logistic.bounds,
        x_min=None,
    )
    direct = _feed(PredictionEngine(PredictionConfig(curves=(other,))).job("d"), values)
    assert direct.fitness == pytest.approx(decision.fitness, rel=1e-9)


def _wrong_shape(x: np.ndarray, a: float) -> np.ndarray:
    return np.array([a])


def test_malformed_user_curves_are_rejected() -> None:
    with pytest.raises(ConfigError, match="p0"):
        Curve("bad_p0", "a*x", lambda x, a: a * x, (5.0,), ((0.0,), (1.0,)))
    with pytest.raises(ConfigError, match="one value per parameter"):
        Curve("bad_len", "a*x", lambda x, a: a * x, (0.5,), ((0.0, 0.0), (1.0, 1.0)))
    with pytest.raises(PluginError, match="shape"):
        register_curve(Curve("bad_shape", "a", _wrong_shape, (0.5,), ((0.0,), (1.0,))))
    assert "bad_shape" not in CURVES


# -- decoupled use --------------------------------------------------------------------------
def _candidates() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "learner": _saturating(70.0, 2.0, 6.0, 0.1, seed=1),
        "slow": _saturating(65.0, 1.15, 28.0, 0.3, seed=2),
        "flat": np.clip(1.0 + rng.normal(0.0, 0.3, 40), 0.0, 100.0),
        "rising": 2.0 + 3.0 * np.arange(1, 41, dtype=float),  # to 92% at e_pred = 15
    }


def test_analyze_records_matches_the_incremental_jobs() -> None:
    cfg = PredictionConfig(e_pred=15.0)
    engine = PredictionEngine(cfg)
    for name, values in _candidates().items():
        _feed(engine.job(name), values)
    incremental = engine.decisions()
    assert set(incremental) == set(_candidates())
    assert {d.reason for d in incremental.values()} == {"converged", "max-epochs"}
    # full training logs (past the stop), shuffled: same decisions
    records = {
        name: [((i + 1) * E, float(v)) for i, v in enumerate(values)][::-1]
        for name, values in _candidates().items()
    }
    assert analyze_records(records, cfg) == incremental
    assert engine.analyze(records) == incremental
    # a partial log gives no decision yet for undecided candidates
    partial = {name: pairs[-4:] for name, pairs in records.items()}  # epochs 0.5 .. 2.0
    assert analyze_records(partial, cfg) == {}


def test_decoupled_task_through_files(tmp_path: Path) -> None:
    cfg = PredictionConfig(e_pred=15.0)
    records_path = tmp_path / "records.jsonl"
    decisions_dir = tmp_path / "decisions"
    learner_path = decision_path(decisions_dir, "learner")

    def one_pass() -> dict[str, Decision]:
        """One pass of the engine task over the records; the decisions on disk after it."""
        run_prediction_engine(str(records_path), str(decisions_dir), {"e_pred": 15.0}, max_s=0)
        return {k: Decision.from_dict(d) for k, d in read_all_decisions(decisions_dir).items()}

    assert one_pass() == {}
    assert poll_decision(learner_path, "learner") is None
    cands = _candidates()
    for i in range(30):  # interleaved writers, one line per validation
        for name, values in cands.items():
            append_record(records_path, name, (i + 1) * E, values[i])
    with open(records_path, "a", encoding="utf-8") as fh:
        fh.write('{"candidate": "learner", "epo')  # a writer caught mid-line
    assert len(read_records(records_path)["learner"]) == 30
    decided = one_pass()
    engine = PredictionEngine(cfg)
    for name, values in cands.items():
        _feed(engine.job(name), values[:30])
    assert decided == engine.decisions()
    assert read_decisions(learner_path) == {"learner": decided["learner"]}
    assert poll_decision(learner_path, "learner") == decided["learner"]
    raw = json.loads(learner_path.read_text())
    assert raw["learner"]["reason"] == "converged"


def test_decision_json_round_trip_and_bad_record_lines(tmp_path: Path) -> None:
    d = Decision("c", 2.5, "converged", 69.9, 69.9, 69.5, True, "exp_base", (70.0, 2.0, 6.0))
    write_decisions({"c": d}, tmp_path / "d.json")
    assert read_decisions(tmp_path / "d.json") == {"c": d}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"candidate": "c", "epoch": 0.5, "fitness": 1}\n{"oops": 1}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_records(bad)


# -- paper fidelity and the authors'-code variant, on hand-computed cases -------------------
# ``level`` fits f(x) = a, whose least-squares fit is the mean of the points fitted: every
# prediction is a running mean, so each case's stop epoch and value are computed by hand.
def _level(x: np.ndarray, a: float) -> np.ndarray:
    return np.full_like(x, a)


LEVEL = Curve("level", "a", _level, (0.0,), ((-1e3,), (1e3,)), x_min=None)
LEVEL_DEC = dataclasses.replace(LEVEL, name="level_dec", trend="decreasing")


def _run(values: list[float], **kwargs: object) -> tuple[Decision, PredictionJob]:
    job = PredictionEngine(PredictionConfig(**kwargs)).job("h")  # type: ignore[arg-type]
    decision = _feed(job, values)
    assert decision is not None
    return decision, job


def _first_prediction_epoch(job: PredictionJob) -> float:
    return next(h.epoch for h in job.history if h.prediction is not None)


@pytest.mark.parametrize(
    ("curve", "c_min", "paper", "code"),
    [("exp_base", None, 3, 2), ("pow2", None, 2, 1), (LEVEL, None, 1, 1), (LEVEL, 3, 3, 2)],
)
def test_c_min_is_the_number_of_parameters_and_the_code_fits_one_point_earlier(
    curve: str | Curve, c_min: int | None, paper: int, code: int
) -> None:
    for variant, points in (("paper", paper), ("penguin-code", code)):
        cfg = PredictionConfig(curves=(curve,), c_min=c_min, variant=variant)
        assert cfg.first_fit_points(get_curve(curve)) == points


def test_flat_curve_stops_one_record_earlier_with_the_code_first_fit_on_two_points() -> None:
    # exp_base on a flat 1 %: every fit gives b = 1, a = 2, so every prediction is 1.0.
    # paper: predictions from record 3 (C_min = 3): 1.5, 2.0, 2.5 -> stop at 2.5.
    # code: from record 2 (2 points): 1.0, 1.5, 2.0 -> stop at 2.0.
    for variant, first, stop in (("paper", 1.5, 2.5), ("penguin-code", 1.0, 2.0)):
        decision, job = _run([1.0] * 40, variant=variant)
        assert _first_prediction_epoch(job) == first
        assert decision.reason == "converged" and decision.stop_epoch == stop
        assert decision.fitness == pytest.approx(1.0, abs=1e-3)
    # the same on the level curve with C_min = 3: the first fit on 2 vs 3 points
    for variant, stop in (("paper", 2.5), ("penguin-code", 2.0)):
        decision, job = _run([10.0] * 40, curves=(LEVEL,), c_min=3, variant=variant)
        assert decision.stop_epoch == stop and decision.fitness == pytest.approx(10.0)


def test_paper_waits_past_n_times_e_the_code_does_not() -> None:
    # level, C_min = 1: predictions from record 1, all 10. Three by e = 1.5 = N * E, where
    # Alg. 2 line 3 still exits; the code tests at once.
    paper, _ = _run([10.0] * 40, curves=(LEVEL,))
    code, _ = _run([10.0] * 40, curves=(LEVEL,), variant="penguin-code")
    assert (paper.stop_epoch, code.stop_epoch) == (2.0, 1.5)


def test_mean_centre_in_the_paper_median_centre_in_the_code() -> None:
    # values 10, 10, 10, 12.4, 10.6, ...: running means p2..p6 = 10, 10, 10.6, 10.6, 10.6.
    # paper at e = 2.5: [p3, p4, p5] = [10, 10.6, 10.6], mean 10.4, deviations 0.4 <= 0.5.
    # code at e = 2.0: [10, 10, 10.6], median 10, 0.6 > 0.5; at 2.5: [10, 10.6, 10.6],
    # median 10.6, 0.6 > 0.5; at 3.0: [10.6] * 3.
    values = [10.0, 10.0, 10.0, 12.4] + [10.6] * 36
    paper, _ = _run(values, curves=(LEVEL,), c_min=3)
    code, _ = _run(values, curves=(LEVEL,), c_min=3, variant="penguin-code")
    assert (paper.stop_epoch, code.stop_epoch) == (2.5, 3.0)
    assert paper.fitness == pytest.approx(10.6) and code.fitness == pytest.approx(10.6)
    assert paper.converged and code.converged


def test_an_invalid_prediction_clears_the_code_window() -> None:
    # values 99.9, 99.9, 101.1, 98.7, 99.9, ...: running means p2..p6 = 99.9, 100.3, 99.9,
    # 99.9, 99.9. paper at e = 2.5: [p3, p4, p5] = [100.3, 99.9, 99.9], the latest valid,
    # mean 100.03 -> converged. code: 100.3 > 100 empties the window, so [99.9] * 3 only at
    # e = 3.0 (skipping 100.3 instead would stop at 2.5; keeping it, at 2.0).
    values = [99.9, 99.9, 101.1, 98.7] + [99.9] * 36
    paper, _ = _run(values, curves=(LEVEL,), c_min=3)
    code, _ = _run(values, curves=(LEVEL,), c_min=3, variant="penguin-code")
    assert (paper.stop_epoch, code.stop_epoch) == (2.5, 3.0)
    assert paper.fitness == pytest.approx(99.9) and code.fitness == pytest.approx(99.9)


def test_code_default_curve_allows_an_asymptote_up_to_200() -> None:
    assert PredictionConfig().curves == ("exp_base",)
    assert PredictionConfig(variant="penguin-code").curves == ("exp_base_a200",)
    code_curve = get_curve("exp_base_a200")
    assert code_curve.formula == get_curve("exp_base").formula
    assert code_curve.bounds == ((0.5, 1.0, 0.0), (200.0, math.inf, math.inf))
    # a still-rising curve with asymptote 150: the code recovers it, prediction 150 - 1.02^205
    x = np.arange(1, 41, dtype=float)
    values = 150.0 - 1.02 ** (245.0 - x)
    code, _ = _run(list(values), variant="penguin-code")
    assert code.reason == "converged" and code.params[0] == pytest.approx(150.0)
    assert code.fitness == pytest.approx(150.0 - 1.02**205, abs=1e-6)
    _, paper = _run(list(values))
    assert all(h.params[0] <= 102.5 for h in paper.history if h.params is not None)


def _level_failing_on_three_points(x: np.ndarray, a: float) -> np.ndarray:
    if np.size(x) == 3:
        raise ValueError("no fit on 3 points")
    return np.full_like(x, a)


@pytest.mark.parametrize("variant", ["paper", "penguin-code"])
def test_a_failed_fit_leaves_the_window_as_it_is(variant: str) -> None:
    # predictions 10, 10, (fit fails), 10: both windows hold [10, 10, 10] at e = 2.0; a
    # failure that emptied the code window would delay it to e = 3.0.
    curve = dataclasses.replace(LEVEL, name="level_failing", fn=_level_failing_on_three_points)
    decision, job = _run([10.0] * 40, curves=(curve,), variant=variant)
    assert job.history[2].selection == "failed" and job.history[2].prediction is None
    assert decision.stop_epoch == 2.0 and decision.fitness == pytest.approx(10.0)


# -- decreasing curves (direction="minimize") -----------------------------------------------
def test_maximize_defaults_are_unchanged() -> None:
    cfg = PredictionConfig()
    assert cfg == PredictionConfig(
        curves=("exp_base",), valid_range=(0.0, 100.0), variant="paper", direction="maximize"
    )
    assert cfg.resolved_curves() == (get_curve("exp_base"),)


def test_minimize_defaults_and_curve_trends() -> None:
    cfg = PredictionConfig(direction="minimize")
    assert cfg.curves == ("exp_base_dec",) and cfg.valid_range == (0.0, math.inf)
    assert get_curve("exp_base_dec").formula == "a + b^(c - x)"
    assert PredictionConfig(direction="minimize", variant="penguin-code").curves == (
        "exp_base_dec",
    )
    with pytest.raises(ConfigError, match="decreasing"):
        PredictionConfig(direction="minimize", curves=("exp_base",))


@pytest.mark.parametrize("variant", ["paper", "penguin-code"])
@pytest.mark.parametrize(
    ("floor", "amplitude", "tau"), [(0.2, 1.5, 3.0), (1.2, 3.4, 4.0), (50.0, 300.0, 5.0)]
)
def test_decreasing_curve_converges_to_its_asymptote(
    variant: str, floor: float, amplitude: float, tau: float
) -> None:
    # floor + amplitude * e^(-x/tau) is a + b^(c - x) with a = floor, b = e^(1/tau), and it
    # has flattened by x = e_pred * r = 40: its asymptote is the prediction, within t = 0.5 %.
    x = np.arange(1, 41, dtype=float)  # rescaled epochs
    values = floor + amplitude * np.exp(-x / tau)
    decision, _ = _run(list(values), direction="minimize", variant=variant)
    assert decision.reason == "converged" and decision.stop_epoch <= 3.0
    assert decision.curve == "exp_base_dec"
    assert decision.params[0] == pytest.approx(floor, rel=1e-6)
    assert abs(decision.fitness - floor) <= 0.5 / 100 * floor


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_decreasing_curve_converges_near_its_asymptote(seed: int) -> None:
    x = np.arange(1, 41, dtype=float)
    noise = np.random.default_rng(seed).normal(0.0, 0.002, 40)
    values = (0.2 + 1.5 * np.exp(-x / 3.0)) * (1.0 + noise)
    decision, _ = _run(list(values), direction="minimize")
    assert decision.reason == "converged" and decision.stop_epoch < 10.0
    assert abs(decision.fitness - 0.2) <= 0.015 * 0.2


@pytest.mark.parametrize("variant", ["paper", "penguin-code"])
def test_minimize_tolerance_is_relative_to_the_centre(variant: str) -> None:
    # losses 2, 2, 2, 2.4, 2.1, ...: running means p2..p6 = 2, 2, 2.1, 2.1, 2.1. t = 0.5 %
    # of ~2.07 is ~0.01, so [2, 2, 2.1] (code, e = 2.0) and [2, 2.1, 2.1] (e = 2.5) spread
    # too much; both stop at [2.1] * 3, e = 3.0 (an absolute t = 0.5 would stop at 2.0 / 2.5).
    values = [2.0, 2.0, 2.0, 2.4] + [2.1] * 36
    decision, _ = _run(values, curves=(LEVEL_DEC,), c_min=3, direction="minimize", variant=variant)
    assert decision.stop_epoch == 3.0 and decision.fitness == pytest.approx(2.1)


def test_minimize_never_learning_rule_stops_curves_at_or_above_the_ceiling() -> None:
    rng = np.random.default_rng(0)
    flat = 4.6 + rng.normal(0.0, 0.3, 40)  # CIFAR-100 cross-entropy at chance, noisy
    paper = _feed(PredictionEngine(PredictionConfig(direction="minimize")).job("n"), flat)
    rule = NeverLearningRule(floor=4.0, min_epoch=3.0)
    cfg = PredictionConfig(direction="minimize", never_learning=rule)
    decision = _feed(PredictionEngine(cfg).job("n"), flat)
    assert decision.reason == "never-learning" and not decision.converged
    assert decision.stop_epoch == 3.0 < paper.stop_epoch
    assert decision.fitness >= 4.0
    x = np.arange(1, 41, dtype=float)
    learner = _feed(PredictionEngine(cfg).job("l"), 1.2 + 3.4 * np.exp(-x / 8.0))
    assert learner.reason == "converged"


def test_prediction_options_pass_variant_and_direction() -> None:
    default = prediction_config(PredictionOptions().engine_config(0.5, 20.0))
    assert default == PredictionConfig(e_pred=20.0)
    opts = PredictionOptions(variant="penguin-code", never_learning_floor=4.0)
    cfg = prediction_config(opts.engine_config(0.5, 20.0, direction="minimize"))
    assert (cfg.variant, cfg.direction, cfg.curves) == (
        "penguin-code",
        "minimize",
        ("exp_base_dec",),
    )
    assert cfg.never_learning == NeverLearningRule(floor=4.0)
