"""``python -m streamal predict MODEL PATTERN...``: a trained model on measured patterns.

    streamal predict RUN_DIR|STAGE_DIR|best.pt PATTERN... [--stage T3] [--unit tof|d]
                     [--bank N] [--refine] [--json] [--plot [DIR]] [--min-coverage F]
                     [--fill MODE]

Prints, per pattern, the class probabilities and each free parameter of the most probable
class ± σ in its unit; with ``--refine`` also the least-squares fit of the training simulator
to it (diffraction: the cell ± esd, R_wp and GoF of the most probable class, and of the
runner-up when the classifier is unsure). ``--json``: one JSON object on stdout instead. A
bad model path or
pattern file is one ``error: FILE: what is wrong`` line on stderr; the other patterns are still
predicted, and the exit status is 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from streamal.inference.grid import FILL_MODES, MIN_COVERAGE

EXIT_BAD_INPUT = 2


def _fraction(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {value:g})")
    return value


def add_parser(subparsers: Any) -> None:  # argparse's _SubParsersAction
    """Register the ``predict`` subcommand on ``subparsers``."""
    p = subparsers.add_parser(
        "predict",
        help="predict class and parameters ± σ of measured patterns with a trained model",
        description="Predict the class probabilities and the free parameters ± σ (in their "
        "units) of measured patterns with a trained model. Each pattern is read (text x y [e], "
        ".npy, and the formats installed apps add: GSAS .gsa/.gss/.fxye, Mantid NeXus .nxs), "
        "converted to the model's x axis and rebinned onto its grid conserving counts.",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="a run directory (its last trained stage), a stage folder checkpoints/T3, or a "
        "best.pt with its model.json beside it",
    )
    p.add_argument("patterns", nargs="+", metavar="PATTERN", help="pattern file(s) to predict")
    p.add_argument(
        "--stage", help="with a run directory: the training stage to use, e.g. T3 (default: last)"
    )
    p.add_argument(
        "--unit",
        help="x unit of the pattern files, one the model reads (diffraction: tof or d); "
        "default: the file's own, else the one under which the data cover the model's grid",
    )
    p.add_argument(
        "--bank",
        help="for files holding several patterns (GSAS banks): predict only this one, by "
        "position (0, 1, ...) or label ('bank 2'); default: all of them",
    )
    p.add_argument(
        "--refine",
        action="store_true",
        help="also refine each prediction by least squares with the simulator the model was "
        "trained on as forward model (diffraction: the cell ± esd, zero shift, scale and "
        "background of the most probable class, and of the runner-up when its probability is "
        "below 0.9; prints R_wp and GoF)",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON object with every prediction"
    )
    p.add_argument(
        "--plot",
        nargs="?",
        const=".",
        metavar="DIR",
        help="also write a PNG per pattern (the pattern on the model's grid, titled with the "
        "prediction) into DIR (default: the current folder); with --refine also one per "
        "pattern and class refined (observed, calculated, difference)",
    )
    p.add_argument(
        "--min-coverage",
        type=_fraction,
        default=MIN_COVERAGE,
        metavar="F",
        help=f"least fraction of the model's grid a pattern must cover (default {MIN_COVERAGE})",
    )
    p.add_argument(
        "--fill",
        choices=FILL_MODES,
        default="background",
        help="value of the grid bins a pattern does not reach: its background (a low "
        "percentile of the covered values) or zero (default: background)",
    )
    p.set_defaults(func=run_predict)


def _error(message: str) -> None:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)


def _stem(prediction: Any, i: int) -> str:
    """File name stem of a prediction's plots: the pattern file's, with its bank."""
    label = f"-{prediction.label.replace(' ', '')}" if prediction.label else ""
    stem = Path(prediction.source).stem + label
    return stem or f"pattern-{i}"


def run_predict(args: argparse.Namespace) -> int:
    """The ``predict`` command. Model errors raise (one line, exit 2 via the main CLI);
    pattern errors are reported one line each and make the exit status 2."""
    from streamal.errors import PluginError
    from streamal.inference.errors import InferenceError, PatternError
    from streamal.inference.predictor import Predictor, plot_prediction, select_patterns
    from streamal.inference.readers import read_patterns

    try:
        predictor = Predictor(
            args.model, stage=args.stage, min_coverage=args.min_coverage, fill=args.fill
        )
    except InferenceError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    if args.unit and predictor.grid is not None and predictor.grid.axis_named(args.unit) is None:
        _error(
            f"--unit {args.unit}: not an x unit this model reads "
            f"({', '.join(predictor.grid.names)})"
        )
        return EXIT_BAD_INPUT
    results, bad = [], 0
    for path in args.patterns:
        try:
            found = select_patterns(read_patterns(path), args.bank)
            results += predictor.predict_measurements(found, unit=args.unit)
        except PatternError as exc:
            _error(str(exc.at(path)))
            bad += 1
        except InferenceError as exc:  # the model cannot predict at all
            _error(str(exc))
            return EXIT_BAD_INPUT
    fits: list[list[Any]] = [[] for _ in results]
    if args.refine:
        for i, r in enumerate(results):
            try:
                fits[i] = predictor.refine(r)
            except PatternError as exc:
                _error(str(exc))
                bad += 1
            except (InferenceError, PluginError) as exc:  # no simulator, or no refinement
                _error(str(exc))
                return EXIT_BAD_INPUT
    plots: list[str] = []
    refined = [[f.to_dict() for f in per] for per in fits]
    if args.plot is not None:
        folder = Path(args.plot)
        folder.mkdir(parents=True, exist_ok=True)
        for i, r in enumerate(results):
            stem = _stem(r, i)
            plots.append(str(plot_prediction(r, folder / f"{stem}.predict.png", predictor.grid)))
            for j, (fit, d) in enumerate(zip(fits[i], refined[i], strict=True)):
                d["plot"] = str(fit.plot(folder / f"{stem}.refine-{d.get('class', j)}.png"))
                plots.append(d["plot"])
    if args.json:
        predictions = [r.to_dict() for r in results]
        if args.refine:
            for p, per in zip(predictions, refined, strict=True):
                p["refinement"] = per
        print(
            json.dumps(
                {
                    "model": str(predictor.files.checkpoint),
                    "stage": predictor.stage,
                    "predictions": predictions,
                    "plots": plots,
                    "errors": bad,
                },
                ensure_ascii=False,
            )
        )
    else:
        print(f"model: {predictor.files.checkpoint} (stage {predictor.stage or '?'})")
        for r, per in zip(results, fits, strict=True):
            print(r.describe())
            for fit in per:
                print(f"  refined {fit.describe()}")
        for path in plots:
            print(f"wrote {path}")
    return EXIT_BAD_INPUT if bad else 0
