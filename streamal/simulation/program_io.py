"""Input files an external program reads and output files it writes, in the default formats.

Input, one file per program run:

* ``table`` (``input.txt``): one line per sample, ``class_index p_1 ... p_k`` in the space's
  parameter order, 17 significant digits (``fscanf(f, "%d %lf %lf", ...)`` reads it).
* ``json`` (``input.json``): ``[{"class": 0, "class_name": "cubic", "params": {"a": 3.9}}]``.
* ``npy`` (``input.npy``): a float64 ``(n, 1 + k)`` array, the class index in column 0.
* a template file: Python format text with ``{name}`` per parameter plus ``{class}``,
  ``{class_name}``, ``{sample}`` (index in the run) and ``{n}``; rendered once per sample and
  the renderings concatenated (one sample per run: just the rendering).

Output: a ``.npy`` file is read with ``np.load``, any other with ``np.loadtxt``; it must hold
``n * prod(output_shape)`` values. A file name with ``{sample}`` means one file per sample.
"""

from __future__ import annotations

import json
import string
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from streamal.data.space import ParameterSpace
from streamal.errors import SimulationError

InputFormat = Literal["table", "json", "npy"]
DEFAULT_INPUT_FILE: dict[str, str] = {
    "table": "input.txt",
    "json": "input.json",
    "npy": "input.npy",
    "template": "input.txt",
}
SAMPLE_FIELDS = ("class", "class_name", "sample", "n")


def template_fields(text: str) -> set[str]:
    """The placeholder names in a format string (``{a:.3f}`` → ``a``).

    Raises:
        ValueError: ``text`` is not a valid format string.
    """
    names = set()
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None:
            if not name.isidentifier():
                raise ValueError(f"placeholder {{{name}}} is not a plain name")
            names.add(name)
    return names


def check_template(text: str, space: ParameterSpace, source: str) -> None:
    """Raise :class:`SimulationError` if ``text`` names a placeholder no sample has."""
    allowed = (*space.param_names, *SAMPLE_FIELDS)
    try:
        unknown = sorted(template_fields(text) - set(allowed))
    except ValueError as exc:
        raise SimulationError(f"{source}: {exc}") from None
    if unknown:
        raise SimulationError(
            f"{source}: unknown placeholder(s) {unknown}; allowed: {', '.join(allowed)}"
        )


def render_template(
    text: str, space: ParameterSpace, classes: np.ndarray, params: np.ndarray
) -> str:
    """``text`` rendered for each sample, concatenated."""
    parts = []
    for j, (k, row) in enumerate(zip(classes, params, strict=True)):
        values = {name: float(v) for name, v in zip(space.param_names, row, strict=True)}
        values["class"], values["class_name"] = int(k), space.class_names[int(k)]
        values["sample"], values["n"] = j, len(classes)
        parts.append(text.format(**values))
    return "".join(parts)


def write_default_input(
    path: Path,
    fmt: str,
    space: ParameterSpace,
    classes: np.ndarray,
    params: np.ndarray,
) -> None:
    """Write ``classes``/``params`` to ``path`` in ``fmt`` (``table``, ``json`` or ``npy``)."""
    if fmt == "table":
        lines = [
            " ".join([str(int(k)), *(f"{float(v):.17g}" for v in row)])
            for k, row in zip(classes, params, strict=True)
        ]
        path.write_text("\n".join(lines) + "\n")
    elif fmt == "json":
        data = [
            {
                "class": int(k),
                "class_name": space.class_names[int(k)],
                "params": {n: float(v) for n, v in zip(space.param_names, row, strict=True)},
            }
            for k, row in zip(classes, params, strict=True)
        ]
        path.write_text(json.dumps(data, indent=1) + "\n")
    elif fmt == "npy":
        np.save(path, np.column_stack([classes.astype(np.float64), params]))
    else:
        raise SimulationError(f"input_format {fmt!r}; allowed: table, json, npy")


def output_paths(workdir: Path, output_file: str, n: int) -> list[Path]:
    """The output file, or with ``{sample}`` in its name one file per sample."""
    if "{sample}" in output_file:
        return [workdir / output_file.format(sample=j) for j in range(n)]
    return [workdir / output_file]


def read_default_output(
    workdir: Path, output_file: str, n: int, output_shape: tuple[int, ...]
) -> np.ndarray:
    """The ``(n, *output_shape)`` float32 outputs of one run, from the file(s) it wrote.

    Raises:
        SimulationError: A file is missing, unreadable, or holds the wrong number of values.
    """
    paths = output_paths(workdir, output_file, n)
    per_file = n // len(paths)
    parts = []
    for path in paths:
        if not path.exists():
            raise SimulationError(f"the program wrote no output file {path.name}")
        try:
            with warnings.catch_warnings():  # an empty file: said below, as a wrong count
                warnings.simplefilter("ignore", UserWarning)
                data = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, ndmin=1)
        except (OSError, ValueError) as exc:
            raise SimulationError(
                f"cannot parse output file {path.name}: {' '.join(str(exc).split())}"
            ) from None
        expected = per_file * int(np.prod(output_shape))
        if data.size != expected:
            raise SimulationError(
                f"output file {path.name} holds {data.size} values, expected {expected} "
                f"({per_file} sample(s) x {output_shape})"
            )
        parts.append(np.asarray(data, dtype=np.float32).reshape(per_file, *output_shape))
    return np.concatenate(parts)
