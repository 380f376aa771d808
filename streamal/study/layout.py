"""What a study is: its config, overrides and runs, kept in ``STUDY_DIR/study.json``.

Each run is the study's config at one node count and workflow (one repeat), in its own run
directory ``STUDY_DIR/n<nodes>-<workflow>-r<repeat>``, with ``--set site.nodes=N --set
workflow.name=W`` after the study's own ``--set`` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamal import durable
from streamal.errors import ConfigError

STUDY_FILE = "study.json"


@dataclass(frozen=True, order=True)
class StudyRun:
    """One campaign of a study."""

    nodes: int
    workflow: str
    repeat: int = 1

    @property
    def name(self) -> str:
        """The run directory's name inside the study directory."""
        return f"n{self.nodes}-{self.workflow}-r{self.repeat}"

    def overrides(self) -> list[str]:
        """The ``--set`` arguments that make the study's config this run."""
        return [f"site.nodes={self.nodes}", f"workflow.name={self.workflow}"]


@dataclass
class Study:
    """A study directory: the config (absolute path), the user's ``--set`` overrides, runs."""

    directory: Path
    config: Path
    sets: list[str] = field(default_factory=list)
    runs: list[StudyRun] = field(default_factory=list)

    def run_dir(self, run: StudyRun) -> Path:
        return self.directory / run.name

    def save(self) -> None:
        durable.write_json(
            self.directory / STUDY_FILE,
            {
                "config": str(self.config),
                "sets": self.sets,
                "runs": [
                    {"nodes": r.nodes, "workflow": r.workflow, "repeat": r.repeat}
                    for r in self.runs
                ],
            },
        )

    @classmethod
    def load(cls, directory: str | Path) -> Study:
        """The study saved in ``directory``.

        Raises:
            ConfigError: No readable ``study.json`` there.
        """
        directory = Path(directory)
        data: Any = durable.read_json(directory / STUDY_FILE, default=None)
        if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
            raise ConfigError(f"{directory}: not a study directory (no readable {STUDY_FILE})")
        runs = [
            StudyRun(int(r["nodes"]), str(r["workflow"]), int(r["repeat"])) for r in data["runs"]
        ]
        return cls(directory, Path(data["config"]), list(data.get("sets", [])), runs)


def plan_study(
    directory: Path,
    config: Path,
    sets: list[str],
    nodes: list[int],
    workflows: list[str],
    repeat: int,
) -> Study:
    """The study in ``directory``: a new one, or the saved one extended by these runs.

    Raises:
        ConfigError: ``directory`` holds a study of another config or other overrides.
    """
    wanted = [StudyRun(n, w, r) for n in nodes for w in workflows for r in range(1, repeat + 1)]
    config = config.resolve()
    if (directory / STUDY_FILE).exists():
        saved = Study.load(directory)
        if saved.config != config or saved.sets != sets:
            raise ConfigError(
                f"{directory}: holds a study of {saved.config} with --set {saved.sets or '(none)'}"
                f", not of {config} with --set {sets or '(none)'}; choose another --out"
            )
        runs = sorted(set(saved.runs) | set(wanted))
        return Study(directory, config, sets, runs)
    return Study(directory, config, sets, sorted(wanted))
