"""Append-only HDF5 sample store with one writer.

Layout (every dataset chunked and growing along axis 0)::

    /samples/params   (n, P) float64    full parameter vectors (attr ``names``)
    /samples/classes  (n,)   int16      class index (file attr ``class_names``)
    /samples/inputs   (n, *shape) float32
    /samples/phase    (n,)   int16      workflow phase
    /samples/split    (n,)   int8       index into SPLITS
    /samples/origin   (n,)   int16      index into file attr ``origins`` (policy name)
    /samples/batch    (n,)   int32      row of /batches
    /batches          (m,)   compound   key, start, count, phase, split, origin, time
    /failed/...                          samples a simulator failed on, with the error

A batch is committed when its row in ``/batches`` is written and the file flushed; the
sample rows are written first. On reopen, sample rows past the last committed batch (a
batch torn by a crash) are dropped and reported in :attr:`SampleStore.recovered`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from streamal.errors import StoreError

SPLITS = ("train", "val", "test", "study")
FORMAT_VERSION = 1
_BATCH_DTYPE = np.dtype(
    [
        ("key", h5py.string_dtype()),
        ("start", "i8"),
        ("count", "i8"),
        ("phase", "i2"),
        ("split", "i1"),
        ("origin", "i2"),
        ("time", "f8"),
    ]
)
_FAILED_DTYPE = np.dtype(
    [
        ("key", h5py.string_dtype()),
        ("phase", "i2"),
        ("split", "i1"),
        ("origin", "i2"),
        ("cls", "i2"),
        ("error", h5py.string_dtype()),
        ("time", "f8"),
    ]
)


@dataclass(frozen=True)
class BatchInfo:
    """One committed batch."""

    key: str
    start: int
    count: int
    phase: int
    split: str
    origin: str


class StoreView:
    """A selection of samples (by split/phase/class) read lazily from the store."""

    def __init__(self, store: SampleStore, indices: np.ndarray) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def _read(self, name: str, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            ds = self.store._samples[name]
            return np.empty((0, *ds.shape[1:]), dtype=ds.dtype)
        # h5py fancy indexing needs increasing indices; read the covering slice when dense.
        lo, hi = int(rows.min()), int(rows.max()) + 1
        if hi - lo <= 2 * len(rows):
            return self.store._samples[name][lo:hi][rows - lo]
        order = np.argsort(rows)
        out = self.store._samples[name][rows[order]]
        return out[np.argsort(order)]

    def params(self) -> np.ndarray:
        return self._read("params", self.indices)

    def classes(self) -> np.ndarray:
        return self._read("classes", self.indices).astype(np.int64)

    def inputs(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Inputs of view rows ``start:stop`` (everything by default)."""
        return self._read("inputs", self.indices[start:stop])

    def iter_blocks(self, block: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(inputs, classes, params)`` in blocks, so a large view never sits in memory whole."""
        for s in range(0, len(self), block):
            rows = self.indices[s : s + block]
            yield (
                self._read("inputs", rows),
                self._read("classes", rows).astype(np.int64),
                self._read("params", rows),
            )


class SampleStore:
    """The run's samples in one HDF5 file, appended batch by batch.

    Args:
        path: The ``.h5`` file; created if missing, else reopened for appending.
        param_names: Names of the parameter vector (checked against an existing file).
        class_names: Class labels (checked against an existing file).
        input_shape: Shape of one sample's input (checked against an existing file).
        mode: ``"a"`` (append, the single writer) or ``"r"`` (read only).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        param_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        input_shape: Sequence[int] | None = None,
        mode: str = "a",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if mode not in ("a", "r"):
            raise StoreError(f"store mode must be 'a' or 'r', got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        exists = self.path.exists()
        if not exists and mode == "r":
            raise StoreError(f"{self.path}: no sample store here")
        if not exists and (param_names is None or class_names is None or input_shape is None):
            raise StoreError(
                f"{self.path}: a new store needs param_names, class_names and input_shape"
            )
        if not exists:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file = h5py.File(self.path, mode)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open sample store ({exc})") from None
        self.recovered: list[str] = []
        if not exists:
            self._create(list(param_names), list(class_names), tuple(input_shape), metadata or {})
        else:
            self._check(param_names, class_names, input_shape)
            if mode == "a":
                self._drop_torn_rows()
        self._samples = self._file["samples"]
        self._batches = self._file["batches"]

    # -- creation and checks --------------------------------------------------------------
    def _create(
        self,
        params: list[str],
        classes: list[str],
        shape: tuple[int, ...],
        metadata: dict[str, Any],
    ) -> None:
        f = self._file
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["class_names"] = json.dumps(classes)
        f.attrs["param_names"] = json.dumps(params)
        f.attrs["input_shape"] = json.dumps(list(shape))
        f.attrs["metadata"] = json.dumps(metadata)
        f.attrs["origins"] = json.dumps([])
        g = f.create_group("samples")
        rows = max(1, min(256, (1 << 20) // (4 * int(np.prod(shape)) or 1)))
        g.create_dataset(
            "params",
            (0, len(params)),
            "f8",
            maxshape=(None, len(params)),
            chunks=(1024, len(params)),
        )
        g.create_dataset(
            "inputs", (0, *shape), "f4", maxshape=(None, *shape), chunks=(rows, *shape)
        )
        for name, dtype in (
            ("classes", "i2"),
            ("phase", "i2"),
            ("split", "i1"),
            ("origin", "i2"),
            ("batch", "i4"),
        ):
            g.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(4096,))
        f.create_dataset("batches", (0,), _BATCH_DTYPE, maxshape=(None,), chunks=(256,))
        fg = f.create_group("failed")
        fg.create_dataset("records", (0,), _FAILED_DTYPE, maxshape=(None,), chunks=(256,))
        fg.create_dataset(
            "params",
            (0, len(params)),
            "f8",
            maxshape=(None, len(params)),
            chunks=(256, len(params)),
        )
        f.flush()

    def _check(self, params, classes, shape) -> None:
        attrs = self._file.attrs
        for key, want in (
            ("param_names", params),
            ("class_names", classes),
            ("input_shape", shape),
        ):
            have = json.loads(attrs[key])
            if want is not None and list(want) != have:
                raise StoreError(
                    f"{self.path}: store was written with {key} {have}, this run has {list(want)}"
                )

    def _drop_torn_rows(self) -> None:
        """Drop sample rows that no committed batch covers (a crash mid-append)."""
        batches = self._file["batches"]
        committed = int(batches[-1]["start"] + batches[-1]["count"]) if len(batches) else 0
        n = self._file["samples/classes"].shape[0]
        torn = {
            name: ds.shape[0]
            for name, ds in self._file["samples"].items()
            if ds.shape[0] != committed
        }
        if torn:
            self.recovered.append(
                f"dropped {max(torn.values()) - committed} sample row(s) of an uncommitted batch "
                f"(committed {committed}, found {n})"
            )
            for name in torn:
                self._file["samples"][name].resize(committed, axis=0)
        failed = self._file["failed"]
        nf = failed["records"].shape[0]
        if failed["params"].shape[0] != nf:
            self.recovered.append("dropped a torn failure record")
            failed["params"].resize(min(nf, failed["params"].shape[0]), axis=0)
            failed["records"].resize(failed["params"].shape[0], axis=0)
        if self.recovered:
            self._file.flush()

    # -- properties -------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return json.loads(self._file.attrs["class_names"])

    @property
    def param_names(self) -> list[str]:
        return json.loads(self._file.attrs["param_names"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(json.loads(self._file.attrs["input_shape"]))

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads(self._file.attrs["metadata"])

    @property
    def origins(self) -> list[str]:
        return json.loads(self._file.attrs["origins"])

    def __len__(self) -> int:
        return int(self._samples["classes"].shape[0])

    # -- writing ----------------------------------------------------------------------------
    def _origin_code(self, origin: str) -> int:
        origins = self.origins
        if origin not in origins:
            origins.append(origin)
            self._file.attrs["origins"] = json.dumps(origins)
        return origins.index(origin)

    def append(
        self,
        *,
        key: str,
        classes: np.ndarray,
        params: np.ndarray,
        inputs: np.ndarray,
        phase: int,
        split: str,
        origin: str,
    ) -> BatchInfo:
        """Append one batch and flush; ``key`` names the batch and must be new.

        Raises:
            StoreError: Read-only store, a duplicate key, or arrays of the wrong shape.
        """
        if self.mode != "a":
            raise StoreError(f"{self.path}: opened read-only")
        if split not in SPLITS:
            raise StoreError(f"split {split!r} is not one of {SPLITS}")
        if self.has_batch(key):
            raise StoreError(f"{self.path}: batch {key!r} is already stored")
        classes = np.asarray(classes)
        params = np.asarray(params, dtype=np.float64)
        inputs = np.asarray(inputs, dtype=np.float32)
        n = len(classes)
        if params.shape != (n, len(self.param_names)) or inputs.shape != (n, *self.input_shape):
            raise StoreError(
                f"batch {key!r}: expected params {(n, len(self.param_names))} and inputs "
                f"{(n, *self.input_shape)}, got {params.shape} and {inputs.shape}"
            )
        start = len(self)
        batch_row = len(self._batches)
        columns = {
            "params": params,
            "classes": classes.astype(np.int16),
            "inputs": inputs,
            "phase": np.full(n, phase, np.int16),
            "split": np.full(n, SPLITS.index(split), np.int8),
            "origin": np.full(n, self._origin_code(origin), np.int16),
            "batch": np.full(n, batch_row, np.int32),
        }
        for name, values in columns.items():
            ds = self._samples[name]
            ds.resize(start + n, axis=0)
            ds[start:] = values
        self._batches.resize(batch_row + 1, axis=0)
        self._batches[batch_row] = (
            key,
            start,
            n,
            phase,
            SPLITS.index(split),
            columns["origin"][0] if n else self._origin_code(origin),
            time.time(),
        )
        self._file.flush()
        self._keys_cache = None
        return BatchInfo(key, start, n, phase, split, origin)

    def record_failed(
        self,
        *,
        key: str,
        classes: np.ndarray,
        params: np.ndarray,
        phase: int,
        split: str,
        origin: str,
        error: str,
    ) -> None:
        """Record samples a simulator could not produce, with the error; flushed."""
        f = self._file["failed"]
        params = np.atleast_2d(np.asarray(params, dtype=np.float64))
        n0, n = f["records"].shape[0], len(params)
        code = self._origin_code(origin)
        f["params"].resize(n0 + n, axis=0)
        f["params"][n0:] = params
        f["records"].resize(n0 + n, axis=0)
        f["records"][n0:] = [
            (key, phase, SPLITS.index(split), code, int(c), error, time.time()) for c in classes
        ]
        self._file.flush()

    # -- reading ----------------------------------------------------------------------------
    _keys_cache: set[str] | None = None

    def batch_keys(self) -> set[str]:
        if self._keys_cache is None:
            keys = self._batches["key"][:] if len(self._batches) else []
            self._keys_cache = {k.decode() if isinstance(k, bytes) else k for k in keys}
        return self._keys_cache

    def has_batch(self, key: str) -> bool:
        return key in self.batch_keys()

    def batches(self) -> list[BatchInfo]:
        origins = self.origins
        out = []
        for row in self._batches[:]:
            key = row["key"].decode() if isinstance(row["key"], bytes) else row["key"]
            out.append(
                BatchInfo(
                    key,
                    int(row["start"]),
                    int(row["count"]),
                    int(row["phase"]),
                    SPLITS[int(row["split"])],
                    origins[int(row["origin"])],
                )
            )
        return out

    def failures(self) -> list[dict[str, Any]]:
        """Every recorded failed sample: key, phase, split, origin, class, params, error."""
        f = self._file["failed"]
        origins = self.origins
        out = []
        for rec, params in zip(f["records"][:], f["params"][:], strict=True):

            def s(x):
                return x.decode() if isinstance(x, bytes) else x

            out.append(
                {
                    "key": s(rec["key"]),
                    "phase": int(rec["phase"]),
                    "split": SPLITS[int(rec["split"])],
                    "origin": origins[int(rec["origin"])],
                    "class": int(rec["cls"]),
                    "params": params.tolist(),
                    "error": s(rec["error"]),
                }
            )
        return out

    def select(
        self,
        *,
        split: str | Sequence[str] | None = None,
        phase: int | Sequence[int] | None = None,
        max_phase: int | None = None,
        classes: Sequence[int] | None = None,
    ) -> StoreView:
        """A lazy view of the samples matching every given filter."""
        mask = np.ones(len(self), dtype=bool)
        if split is not None:
            names = [split] if isinstance(split, str) else list(split)
            bad = [s for s in names if s not in SPLITS]
            if bad:
                raise StoreError(f"unknown split(s) {bad}; allowed: {list(SPLITS)}")
            mask &= np.isin(self._samples["split"][:], [SPLITS.index(s) for s in names])
        if phase is not None or max_phase is not None:
            phases = self._samples["phase"][:]
            if phase is not None:
                mask &= np.isin(phases, np.atleast_1d(phase))
            if max_phase is not None:
                mask &= phases <= max_phase
        if classes is not None:
            mask &= np.isin(self._samples["classes"][:], list(classes))
        return StoreView(self, np.flatnonzero(mask))

    def close(self) -> None:
        if self._file.id.valid:
            self._file.flush()
            self._file.close()

    def __enter__(self) -> SampleStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
