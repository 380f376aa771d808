"""Typed run configuration, loaded from YAML, with errors that name the key path.

Every model forbids unknown keys. :func:`load_config` turns any problem into a
:class:`~streamal.errors.ConfigError` whose message lists one line per problem, e.g.::

    workflow.phases[2].epochs: must be > 0 (got 0)
    site.nmae: unknown key; allowed: name, nodes, trainer_ranks, ...
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from streamal.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from streamal.overrides import Override

#: Upper bound of every sample count in a config (a phase's ``samples``, a chunk, a policy's
#: ``study_size``). The paper's largest campaign (E2) simulates 2.6e5 samples per phase; 1e8
#: is 400x that. Beyond it the row lists handed to every training task (Python ints, ~36 bytes
#: each: 3.6 GB at 1e8) and the arrays sized from the count stop fitting in any node's memory,
#: so a larger value is a typo (an extra zero, a byte count), refused before any work starts.
MAX_SAMPLES = 10**8

#: Seeds must fit 32 bits: numpy's generators, ``torch.manual_seed`` and the samplers that add
#: small offsets to the seed all accept it, and a negative seed is refused by numpy.
SEED_LIMIT = 2**32


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(Strict):
    """Where the run executes and how a node is split between the pools."""

    name: str = Field(
        "local",
        description="a site registered under the streamal.sites entry-point group "
        "(`streamal plugins` lists them), or an import path package.module:Class",
    )
    nodes: int = Field(
        1,
        gt=0,
        description="nodes the campaign runs on (one Parsl block of this many nodes); each "
        "node is split between the pools the same way",
    )
    trainer_ranks: int | None = Field(
        None, gt=0, description="DDP ranks per node; default one per GPU, else 1"
    )
    cores_per_rank: int | None = Field(
        None,
        gt=0,
        description="cores pinned to each trainer rank; default 2 (fewer on a tiny node)",
    )
    sim_workers: int | None = Field(
        None, gt=0, description="simulator workers per node; default one per free core"
    )
    allocation: Literal["submit", "inside-job"] = Field(
        "submit",
        description="submit: streamal submits one batch job of site.nodes nodes and runs the "
        "campaign inside it; inside-job: the driver already runs inside an allocation",
    )
    account: str | None = Field(
        None,
        description="batch account (project) the job is charged to; required by the sites "
        "that submit batch jobs (polaris, perlmutter)",
    )
    queue: str | None = Field(
        None,
        description="batch queue (PBS) or QOS (Slurm); default: the site's "
        "(polaris: debug, perlmutter: regular)",
    )
    walltime: str = Field(
        "01:00:00",
        pattern=r"^\d{1,3}:\d{2}:\d{2}$",
        description="walltime of the batch job, HH:MM:SS",
    )
    worker_init: str = Field(
        "",
        description="shell commands run before each Parsl worker starts, e.g. "
        "`module load conda; source venv/bin/activate`",
    )
    scheduler_options: str = Field(
        "",
        description="extra lines of the batch job script's header, one directive a line, "
        "e.g. `#PBS -l place=scatter`",
    )
    encrypted: bool | None = Field(
        None, description="encrypt HTEX traffic; default: the site's (off on local)"
    )

    @field_validator("name")
    @classmethod
    def _installed_site(cls, name: str) -> str:
        from streamal.cluster import sites

        try:
            sites.get(name)
        except PluginError as exc:
            raise ValueError(str(exc)) from None
        return name

    @model_validator(mode="after")
    def _batch_sites_need_account(self) -> SiteConfig:
        from streamal.cluster import sites

        if not self.account and sites.get(self.name).needs_account(self):
            raise ValueError(f"site {self.name!r} submits batch jobs and needs `account`")
        return self


class SchedulerConfig(Strict):
    """Overlap-scheduler behaviour."""

    retries: int = Field(2, ge=0, description="extra attempts for a failed task")
    progress: bool = Field(
        True,
        description="show progress: a live display in a terminal, timestamped lines in a "
        "batch job's log",
    )
    progress_interval_s: float = Field(
        30.0,
        gt=0,
        description="seconds between status lines (each active task group: samples done, "
        "epoch, loss, ETA) when not in a terminal; group starts, ends and failures are "
        "logged at once",
    )
    strategy_period: float = Field(
        0.2,
        gt=0,
        description="seconds between Parsl's strategy ticks (blocks start on the first tick)",
    )
    heartbeat_threshold_s: int = Field(
        30,
        ge=8,
        description="seconds without a heartbeat after which a worker pool takes its driver "
        "as lost and exits (how long the pools of a SIGKILLed driver live on), and the driver "
        "takes a silent pool as lost and retries its tasks; heartbeats every "
        "min(5, threshold // 4) seconds",
    )
    walltime_s: dict[str, float | None] = Field(
        default_factory=dict,
        description="seconds per pool ({sim: 600, train: null}): an attempt running longer "
        "is asked "
        "to stop, recorded as `timeout` and retried per `retries`; null or absent: no limit",
    )
    stage_walltime_s: dict[str, float | None] = Field(
        default_factory=dict,
        description="seconds per stage prefix ({S0: 120, T: 3600}; stage labels: S0, S'0, "
        "S1, S'1, T1, AL1, ...); overrides the pool's walltime, the longest matching prefix "
        "wins",
    )

    @field_validator("walltime_s")
    @classmethod
    def _known_pools(cls, walltimes: dict[str, float | None]) -> dict[str, float | None]:
        from streamal.runtime.pools import POOLS

        unknown = sorted(set(walltimes) - set(POOLS))
        if unknown:
            raise ValueError(f"unknown pool(s) {unknown}; allowed: {', '.join(POOLS)}")
        return walltimes

    @field_validator("walltime_s", "stage_walltime_s")
    @classmethod
    def _positive(cls, walltimes: dict[str, float | None]) -> dict[str, float | None]:
        bad = {k: v for k, v in walltimes.items() if v is not None and not v > 0}
        if bad:
            raise ValueError(f"walltimes must be > 0 seconds or null, got {bad}")
        return walltimes


class PluginConfig(Strict):
    """A plugin picked by entry-point name plus its own options."""

    name: str = Field(
        min_length=1,
        description="an installed plugin of the section's kind (`streamal plugins` lists "
        "them), or an import path package.module:Class",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="the plugin's own options, checked against its Options model (see "
        '"Plugin options" below)',
    )


class SimulatorConfig(PluginConfig):
    """The simulator plugin and how its work is cut into tasks."""

    chunk_size: int = Field(64, gt=0, le=MAX_SAMPLES, description="samples per simulation task")
    mpi_ranks: int | None = Field(
        None,
        gt=0,
        description="run each chunk with mpiexec -n mpi_ranks (MPI launch mode); "
        "each sim worker then owns mpi_ranks cores. Python simulators (mpi4py) only: an "
        "external program's ranks are the `executable` simulator's options.mpi_ranks",
    )


class PhaseConfig(Strict):
    """One phase of a workflow."""

    samples: int = Field(
        gt=0,
        le=MAX_SAMPLES,
        description="samples simulated for training in this phase. phases[0]: uniform training "
        "samples PER CLASS (the validation and test sets are val_fraction and test_fraction "
        "times that, per class); phases[k], k >= 1: phase k's active-learning batch, a TOTAL "
        "over all classes (the policy picks each sample's class). continuous: the later "
        "phases' samples add up to its AL budget; nas: the number of candidates",
    )
    epochs: int = Field(
        gt=0,
        description="epochs of this phase's training (T0, T1, ...); continuous: the epochs "
        "at this training-set size, interpolated between phases; nas: the most epochs any "
        "candidate trains",
    )


class WorkflowConfig(PluginConfig):
    """The campaign's control flow (a workflow plugin) and its phases."""

    phases: list[PhaseConfig] = Field(
        min_length=1,
        description="the phases in order: phase 0 simulates uniform data and trains T0, each "
        "later phase k draws an active-learning batch and trains T_k; baseline and nas take "
        "exactly one",
    )


class TrainConfig(Strict):
    """Trainer settings shared by every workflow."""

    batch_size: int = Field(
        512,
        gt=0,
        description="samples per optimizer step over all ranks (each DDP rank takes "
        "batch_size // ranks)",
    )
    learning_rate: float = Field(5e-4, gt=0, description="learning rate of the Adam optimizer")
    grad_clip: float = Field(
        50.0, gt=0, description="largest gradient norm; larger gradients are scaled down to it"
    )
    backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto",
        description="torch.distributed backend; auto: nccl when every rank has a GPU, else gloo",
    )
    checkpoint_interval_s: float = Field(
        5.0, ge=0, description="save last.pt at most this often, in seconds (0: every epoch)"
    )
    launcher: Literal["auto", "local", "mpi"] = Field(
        "auto",
        description=(
            "how the DDP ranks start: local (one node, this task starts them), mpi (Parsl's "
            "MPIExecutor: one MPI launch over every node of site.nodes), auto (mpi when "
            "site.nodes > 1 on a site that supports it, else local)"
        ),
    )


class ReportConfig(Strict):
    """What the end of a run writes under ``report/``."""

    figures: bool = Field(
        True,
        description="draw the report's figures (gantt.png, utilisation.png, metrics.png, ...) "
        "when the run ends; false: only its tables (tasks.json, samples.json) and the summary, "
        "`streamal report RUN_DIR` draws the figures later",
    )


class RunConfig(Strict):
    """A whole campaign."""

    name: str = Field(
        "run",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="the run's name (letters, digits, _ . -); a new run's directory defaults "
        "to runs/<name>-<timestamp>",
    )
    seed: int = Field(
        0,
        ge=0,
        lt=SEED_LIMIT,
        description="seed of every random draw of the campaign (0 <= seed < 2**32); a resumed "
        "run draws the same samples",
    )
    site: SiteConfig = Field(
        default_factory=SiteConfig,
        description="where the run executes and how each node is split between the pools",
    )
    scheduler: SchedulerConfig = Field(
        SchedulerConfig(), description="task retries, walltimes and the progress display"
    )
    simulator: SimulatorConfig | None = Field(
        None, description="the simulator plugin; required by every workflow that simulates"
    )
    model: PluginConfig | None = Field(
        None, description="the model plugin that is trained; required by the workflows that train"
    )
    policy: PluginConfig | None = Field(
        None,
        description="the policy that chooses what to simulate next; default: the workflow's "
        "(uncertainty-mixture for serial, streaming and continuous)",
    )
    train: TrainConfig = Field(TrainConfig(), description="trainer settings of every training")
    workflow: WorkflowConfig = Field(
        description="the campaign's control flow (an installed workflow) and its phases"
    )
    report: ReportConfig = Field(
        ReportConfig(), description="what the end of a run writes under report/"
    )

    def data_settings(self) -> dict[str, Any]:
        """The settings that define the data a run produces, as plain JSON values: all but
        :data:`NOT_DATA_SETTINGS` (how tasks are scheduled, how the training's ranks are
        launched, what the report draws)."""
        return self.model_dump(mode="json", exclude=NOT_DATA_SETTINGS)

    def fingerprint(self) -> str:
        """Stable hash of :meth:`data_settings`."""
        data = json.dumps(self.data_settings(), sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:16]


#: Settings a resumed run may change: they do not change the data it produces.
NOT_DATA_SETTINGS: dict[str, Any] = {"scheduler": True, "train": {"launcher"}, "report": True}

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _path(loc: tuple[int | str, ...]) -> str:
    """``workflow.phases[2].epochs``; odd keys are quoted: ``site["bad key"]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{json.dumps(str(part))}]"
    return out or "<root>"


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The config model that owns the key at ``loc`` (to list its allowed keys)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _innermost_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _innermost_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _innermost_model(arg)
        if found is not None:
            return found
    return None


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "too_short": "needs at least {min_length} item(s)",
}


def format_validation_error(
    err: ValidationError, model: type[BaseModel], prefix: tuple[int | str, ...] = ()
) -> list[str]:
    """One line per problem: ``key.path: what is wrong; what is allowed``."""
    lines = []
    for e in err.errors():
        loc = prefix + tuple(e["loc"])
        ctx = e.get("ctx") or {}
        if e["type"] == "extra_forbidden":
            owner = _model_at(model, tuple(e["loc"]))
            allowed = ", ".join(owner.model_fields) if owner else "?"
            msg = f"unknown key; allowed: {allowed}"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif e["type"] == "literal_error":
            msg = f"got {e['input']!r}; allowed: {ctx.get('expected', '')}"
        elif e["type"] in _MESSAGES:
            msg = _MESSAGES[e["type"]].format(**ctx) + f" (got {e['input']!r})"
        elif e["type"] == "value_error":
            msg = str(ctx.get("error", e["msg"]))
        else:
            msg = f"{e['msg']} (got {e['input']!r})"
        lines.append(f"{_path(loc)}: {msg}")
    return lines


class InvalidConfig(ConfigError):
    """A config with problems; the message is a header line and one line per problem.

    Attributes:
        source: The input's name (a file, ``FILE (with --set)``, ``<config>``).
        problems: One ``key.path: what is wrong`` line per problem, in order.
    """

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: invalid configuration\n  " + "\n  ".join(self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.problems))


def parse_config(
    data: Any,
    *,
    source: str = "<config>",
    check_plugins: bool = True,
    check_node: bool = True,
) -> RunConfig:
    """Validate a mapping into a :class:`RunConfig`.

    Every problem is found in one pass: when the keys themselves are wrong, each plugin
    section whose ``name`` and ``options`` are well-formed is still checked against its
    plugin, and a well-formed ``site`` against its node.

    Args:
        data: The parsed YAML.
        source: Name of the input, first on the error message.
        check_plugins: Load each named plugin and validate its ``options``.
        check_node: Check ``site`` against the node it describes
            (:func:`streamal.config_checks.check_site`).

    Raises:
        InvalidConfig: One line per problem, each naming its key path.
        ConfigError: The top level is not a mapping.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of keys, got {type(data).__name__}"
        )
    from streamal.config_checks import check_plugin_options, check_raw_sections, check_site

    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as err:
        problems = format_validation_error(err, RunConfig)
        bad = [tuple(e["loc"]) for e in err.errors()]
        problems += check_raw_sections(
            data, bad, check_plugins=check_plugins, check_node=check_node
        )
        raise InvalidConfig(source, problems) from None
    problems = check_plugin_options(cfg) if check_plugins else []
    if check_node:
        problems += check_site(cfg.site)
    if problems:
        raise InvalidConfig(source, problems)
    return cfg


def load_config(
    path: str | Path,
    *,
    check_plugins: bool = True,
    check_node: bool = True,
    overrides: Sequence[Override] = (),
) -> RunConfig:
    """Read a UTF-8 YAML file (safe loader) and validate it (see :func:`parse_config`).

    Args:
        path: The YAML file.
        check_plugins: As for :func:`parse_config`.
        check_node: As for :func:`parse_config`.
        overrides: ``--set`` overrides (:func:`streamal.overrides.parse_overrides`), applied
            in order to the loaded mapping before validation.

    Raises:
        ConfigError: The file is missing, is not UTF-8 or not valid YAML, an override cannot
            be applied, or the result fails validation.
    """
    return load_effective_config(
        path, check_plugins=check_plugins, check_node=check_node, overrides=overrides
    )[0]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: ``line 3, column 7: could not find expected ':'``."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if not problem:
        return " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + (f"{problem} ({context})" if context else problem)


def load_effective_config(
    path: str | Path,
    *,
    check_plugins: bool = True,
    check_node: bool = True,
    overrides: Sequence[Override] = (),
) -> tuple[RunConfig, bytes]:
    """:func:`load_config`, plus the bytes to save as a run's ``config.yaml``.

    Those are the file as read when there are no overrides; otherwise the effective mapping as
    YAML (:func:`streamal.overrides.dump_effective_config`), so a resume reads the same values.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte {exc.start} (line {line}) is "
            f"0x{raw[exc.start]:02x}; save the config as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if not overrides:
        cfg = parse_config(
            data, source=str(path), check_plugins=check_plugins, check_node=check_node
        )
        return cfg, raw
    from streamal.overrides import apply_overrides, dump_effective_config

    data = apply_overrides(data, overrides)
    cfg = parse_config(
        data, source=f"{path} (with --set)", check_plugins=check_plugins, check_node=check_node
    )
    return cfg, dump_effective_config(data, source=str(path), overrides=overrides).encode()
