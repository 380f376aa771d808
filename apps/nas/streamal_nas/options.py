"""Options of the ``nas`` workflow (the config's ``workflow.options``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from streamal.plugins import PluginOptions

from .fitness import DIRECTIONS, FitnessName
from .genome_model import EncoderOptions
from .network import NetworkOptions

__all__ = [
    "DatasetOptions",
    "DigitsDataset",
    "NasOptions",
    "PredictionOptions",
    "SimilarityOptions",
    "SimulateDataset",
    "StoreDataset",
    "TransferOptions",
]


class PredictionOptions(PluginOptions):
    """PENGUIN engine settings (Table 4 of the paper); ``e_pred`` defaults to max epochs."""

    enabled: bool = Field(
        True, description="stop candidates early once their learning curve's end is predicted"
    )
    n_predictions: int = Field(3, ge=1, description="N: predictions that must agree")
    tolerance: float = Field(
        0.5,
        ge=0,
        description="t: spread around their centre, in % (points of accuracy; percent of the "
        "centre when the fitness is minimized)",
    )
    e_pred: float | None = Field(None, gt=0, description="epoch predicted for; <= max epochs")
    curves: list[str] | None = Field(
        None, description="curve names; default a - b^(c-x) (a + b^(c-x) when minimizing)"
    )
    never_learning_floor: float | None = Field(
        None,
        description="stop curves that stay at or below this accuracy (%); at or above this "
        "value when the fitness is minimized",
    )
    variant: Literal["paper", "penguin-code"] = Field(
        "paper",
        description="paper: the text's rules; penguin-code: the authors' code (first fit on "
        "C_min - 1 points, median centre, an invalid prediction clears the window, a <= 200)",
    )
    poll_s: float = Field(0.2, gt=0, description="engine sleep between passes")

    def engine_config(
        self,
        epochs_per_iteration: float,
        max_epochs: float,
        *,
        direction: Literal["maximize", "minimize"] = "maximize",
    ) -> dict[str, Any]:
        """The engine's :func:`~.prediction.prediction_config` values (plain, picklable).

        Args:
            epochs_per_iteration: E, the record interval in epochs.
            max_epochs: e_pred when ``e_pred`` is unset.
            direction: ``"minimize"`` when the fitness is a loss (set from the NAS fitness).
        """
        kw: dict[str, Any] = {
            "n_predictions": self.n_predictions,
            "tolerance": self.tolerance,
            "epochs_per_iteration": epochs_per_iteration,
            "e_pred": float(self.e_pred if self.e_pred is not None else max_epochs),
            "variant": self.variant,
            "direction": direction,
        }
        if self.curves:
            kw["curves"] = list(self.curves)
        if self.never_learning_floor is not None:
            kw["never_learning"] = {"floor": self.never_learning_floor}
        return kw


class SimilarityOptions(PluginOptions):
    """A4NN.2 similarity settings."""

    enabled: bool = Field(
        False, description="check each candidate against the ones already trained"
    )
    threshold: float = Field(2.0, ge=0, description="largest graph edit distance = similar")
    mode: Literal["skip", "transfer"] = Field(
        "skip",
        description="a similar candidate: skip (not trained, it inherits the provider's "
        "fitness) or transfer (trained, with it as provider for transfer.enabled)",
    )
    timeout_s: float = Field(0.2, gt=0, description="time bound of one GED search")


class TransferOptions(PluginOptions):
    """Selective weight transfer: provider = parent (regularized evolution), else nearest."""

    enabled: bool = Field(False, description="start candidates from a provider's weights")
    method: Literal["lcs", "lp"] = Field(
        "lcs",
        description="how tensors are matched by shape: lcs (longest common subsequence) or lp "
        "(longest common prefix)",
    )


class DigitsDataset(PluginOptions):
    """scikit-learn's 8x8 digits: 10 classes, no regression target (no download)."""

    name: Literal["digits"] = Field("digits", description="the bundled digits")


class _SampleDataset(PluginOptions):
    """What every dataset of a simulator's samples shares: noise and input encoding."""

    counts: float | None = Field(
        None,
        gt=0,
        description="Poisson noise: each pattern scaled to this many counts at its peak and "
        "resampled before encoding (beam intensity; seeded by the run's seed per row); null: "
        "the patterns as stored",
    )
    encoder: EncoderOptions = Field(
        default_factory=EncoderOptions,
        description="the model plugin whose input encoding candidates train on (and the "
        "exported nas-genome model keeps)",
    )


class StoreDataset(_SampleDataset):
    """A finished campaign's samples, split as the campaign labelled them."""

    name: Literal["store"] = Field(description="a finished campaign's store")
    path: str = Field(description="the campaign's run directory, or the store.h5 in one")


class SimulateDataset(_SampleDataset):
    """Phase 0's uniform sets of the config's ``simulator``, simulated for the search."""

    name: Literal["simulate"] = Field(description="simulate with the config's simulator")
    samples_per_class: PositiveInt = Field(description="uniform training samples per class")
    val_fraction: float = Field(0.5, gt=0, description="validation samples per training sample")
    test_fraction: float = Field(0.5, gt=0, description="test samples per training sample")
    policy_run: str | None = Field(
        None,
        description="a finished active-learning campaign's run directory: the training set "
        "is drawn by its policy, fitted on its final model's uncertainty over its study set "
        "(validation and test stay uniform); null: uniform",
    )
    overlap_epochs: NonNegativeInt = Field(
        0,
        description="0: the search starts once every set is simulated; N: once the validation "
        "set is, and epoch e (from 0) of every candidate trains on the first "
        "ceil(n (e+1) / N) of the n training draws (all from epoch N-1 on), waiting for them "
        "if they are not simulated yet: the same data whatever the simulator's speed",
    )


DatasetOptions = Annotated[
    DigitsDataset | StoreDataset | SimulateDataset, Field(discriminator="name")
]
"""``workflow.options.dataset``: ``{name: digits}``, ``{name: store, path}`` or ``{name:
simulate, samples_per_class}`` (see :mod:`.datasets`)."""


class NasOptions(PluginOptions):
    """Options of the ``nas`` workflow (``workflow.options``).

    The core schema's ``workflow.phases`` maps onto the search as one phase:
    ``samples`` = candidate budget (architectures proposed) and ``epochs`` = E, the most
    epochs any candidate trains. The seed is the top-level ``seed``.
    """

    strategy: Literal["nsga2", "regularized-evolution"] = Field(
        "nsga2", description="search strategy: NSGA-II or regularized evolution (RE)"
    )
    candidate_span: Literal["rank", "node"] = Field(
        "rank",
        description="rank: one candidate at a time per trainer rank of every node (its cores "
        "and GPU); node: one per node, owning all of the node's trainer cores and GPUs",
    )
    population: int = Field(8, ge=2, description="NSGA-II population / RE population N")
    sample_size: int = Field(3, ge=1, description="RE tournament size S")
    phases: int = Field(3, ge=1, description="search space: phases per genome")
    nodes: int = Field(4, ge=2, description="search space: nodes per phase")
    channels: PositiveInt | list[PositiveInt] = Field(
        8, description="channels of the first phase (doubling), or one per phase"
    )
    network: NetworkOptions = Field(
        default_factory=NetworkOptions,
        description="the network around each genome's DAGs: kernels, strides, pooling, head",
    )
    dataset: DatasetOptions = Field(
        default_factory=DigitsDataset,
        description="what candidates train on: digits, a finished campaign's store, or "
        "samples of the config's simulator (simulate)",
    )
    fitness: FitnessName = Field(
        "accuracy",
        description="what a validation is worth: accuracy (%, maximized), class_loss, mse or "
        "score (minimized)",
    )
    fitness_weights: dict[Literal["class_loss", "mse", "nll"], float] | None = Field(
        None, description="score's weight per validation metric (default class_loss, mse: 1)"
    )
    fitness_reference: float | None = Field(
        None,
        gt=0,
        description="hypervolume reference of a minimized fitness (default 1.1 x the worst)",
    )
    batch_size: int = Field(32, gt=0, description="samples per step of a candidate's training")
    learning_rate: float = Field(3e-3, gt=0, description="Adam learning rate of each candidate")
    epochs_per_iteration: float = Field(
        0.5, gt=0, le=1, description="validation (and record) interval, in epochs"
    )
    objective: Literal["flops", "energy"] = Field(
        "flops",
        description="cost objective minimised with the error: flops (of one forward pass) or "
        "energy (of training: measured, else FLOPs x epochs)",
    )
    energy_reference_j: float | None = Field(
        None, gt=0, description="hypervolume reference for measured energy"
    )
    prediction: PredictionOptions = Field(
        PredictionOptions(), description="learning-curve prediction engine (PENGUIN)"
    )
    similarity: SimilarityOptions = Field(
        SimilarityOptions(), description="structural-similarity checks (A4NN.2)"
    )
    transfer: TransferOptions = Field(
        TransferOptions(), description="weight transfer from a similar provider (LP/LCS)"
    )

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """Whether the fitness rises (accuracy) or falls (a loss) as candidates learn."""
        return DIRECTIONS[self.fitness]

    @model_validator(mode="after")
    def _fitness_fits(self) -> NasOptions:
        if self.dataset.name == "digits" and self.fitness in ("mse", "score"):
            raise ValueError(
                f"fitness: {self.fitness} needs regression targets; dataset digits has none "
                "(use accuracy or class_loss)"
            )
        if self.fitness_weights is not None and self.fitness != "score":
            raise ValueError("fitness_weights: only for fitness: score")
        if isinstance(self.channels, list) and len(self.channels) != self.phases:
            raise ValueError(f"channels: {len(self.channels)} values for {self.phases} phases")
        return self

    @model_validator(mode="after")
    def _sample_fits(self) -> NasOptions:
        if self.strategy == "regularized-evolution" and self.sample_size > self.population:
            raise ValueError(
                f"sample_size ({self.sample_size}) must be <= population ({self.population})"
            )
        return self
