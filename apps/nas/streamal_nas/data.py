"""Datasets that need no download: scikit-learn's bundled 8x8 digits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["TensorSplits", "load_digits_splits"]


@dataclass(frozen=True)
class TensorSplits:
    """Train/validation/test tensors of one classification dataset.

    Attributes:
        x_train, y_train, x_val, y_val, x_test, y_test: ``float32`` inputs and ``int64``
            labels.
        num_classes: Number of classes.
        mean, std: Training-set statistics used to standardise every split.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: float
    std: float

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample (no batch axis)."""
        return tuple(self.x_train.shape[1:])


def load_digits_splits(
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    as_images: bool = True,
) -> TensorSplits:
    """scikit-learn's ``load_digits`` (1797 samples, 10 classes) as stratified tensor splits.

    Pixels are standardised with one scalar mean/std from the training split (per-pixel
    statistics would divide by zero on always-blank border pixels).

    Args:
        seed: Seed of the stratified shuffle; equal seeds give identical splits.
        val_fraction: Fraction of all samples in the validation split.
        test_fraction: Fraction of all samples in the test split.
        as_images: ``(N, 1, 8, 8)`` images when true, else flat ``(N, 64)`` vectors.

    Returns:
        The splits.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            "val_fraction and test_fraction must be in (0, 1) with a sum below 1, got "
            f"{val_fraction} and {test_fraction}"
        )
    x, y = load_digits(return_X_y=True)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest,
        y_rest,
        test_size=val_fraction / (1.0 - test_fraction),
        random_state=seed + 1,
        stratify=y_rest,
    )
    mean, std = float(x_train.mean()), float(x_train.std())
    shape = (-1, 1, 8, 8) if as_images else (-1, 64)

    def to_x(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(((a - mean) / std).reshape(shape), dtype=torch.float32)

    def to_y(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.int64)

    return TensorSplits(
        to_x(x_train),
        to_y(y_train),
        to_x(x_val),
        to_y(y_val),
        to_x(x_test),
        to_y(y_test),
        num_classes=10,
        mean=mean,
        std=std,
    )
