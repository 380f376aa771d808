"""Selective weight transfer between candidates (Liu et al.): LP and LCS shape matching.

A model's *shape sequence* is the ordered list of its ``state_dict`` tensors with their
shapes. Matching the provider's sequence against the receiver's one is a string-matching
problem: LP takes the longest common prefix, LCS the longest common subsequence (dynamic
programming, O(nm)); every matched receiver tensor is initialised from its provider tensor.

Batch-norm buffers (``running_mean``, ``running_var``, ``num_batches_tracked``) describe the
statistics of the module's own parameters, so they are left out of the sequence and follow
their module: they are copied when all of that module's sequence entries came from one
provider module. (A BN without affine parameters keeps its running stats in the sequence.)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

__all__ = [
    "ShapeEntry",
    "TransferRecord",
    "longest_common_subsequence",
    "longest_prefix",
    "match_shapes",
    "shape_sequence",
    "transfer_weights",
]

ShapeEntry = tuple[str, tuple[int, ...]]
Method = Literal["lcs", "lp"]
_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _state(source: nn.Module | Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    return source.state_dict() if isinstance(source, nn.Module) else source


def _split(name: str) -> tuple[str, str]:
    prefix, _, suffix = name.rpartition(".")
    return prefix, suffix


def shape_sequence(source: nn.Module | Mapping[str, torch.Tensor]) -> list[ShapeEntry]:
    """Ordered ``(name, shape)`` of the tensors that take part in matching.

    Args:
        source: A model or a ``state_dict``.

    Returns:
        Every state entry in order, except ``num_batches_tracked`` and the running
        statistics of modules that also hold parameters (those follow their module).
    """
    state = _state(source)
    with_params = {_split(n)[0] for n in state if _split(n)[1] not in _BN_BUFFERS}
    out: list[ShapeEntry] = []
    for name, tensor in state.items():
        prefix, suffix = _split(name)
        if suffix == "num_batches_tracked" or (suffix in _BN_BUFFERS and prefix in with_params):
            continue
        out.append((name, tuple(tensor.shape)))
    return out


def longest_prefix(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int]]:
    """LP: index pairs ``(i, i)`` of the longest common prefix of ``a`` and ``b``."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return [(i, i) for i in range(n)]


def longest_common_subsequence(
    a: Sequence[Hashable], b: Sequence[Hashable]
) -> list[tuple[int, int]]:
    """LCS by dynamic programming: increasing index pairs ``(i, j)`` with ``a[i] == b[j]``.

    Among equally long subsequences the earliest matches win (the common prefix aligns first,
    as in LP), so an inserted layer shifts only the matches after it.
    """
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, nxt = table[i], table[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = nxt[j + 1] + 1 if a[i] == b[j] else max(nxt[j], row[j + 1])
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j] and table[i][j] == table[i + 1][j + 1] + 1:
            pairs.append((i, j))
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _token(entry: ShapeEntry, match_role: bool) -> Hashable:
    name, shape = entry
    return (_split(name)[1], shape) if match_role else shape


def match_shapes(
    provider: Sequence[ShapeEntry],
    receiver: Sequence[ShapeEntry],
    method: Method = "lcs",
    match_role: bool = True,
) -> list[tuple[str, str]]:
    """Match two shape sequences.

    Args:
        provider: Provider shape sequence.
        receiver: Receiver shape sequence.
        method: ``'lcs'`` or ``'lp'``.
        match_role: Also require the same tensor role (last name part, e.g. ``weight`` vs
            ``bias``), so a conv bias never feeds a BN weight of the same shape. ``False``
            compares shapes only, as in the paper.

    Returns:
        ``(receiver_name, provider_name)`` pairs in sequence order.
    """
    if method not in ("lcs", "lp"):
        raise ValueError(f"method must be 'lcs' or 'lp', got {method!r}")
    pa = [_token(e, match_role) for e in provider]
    rb = [_token(e, match_role) for e in receiver]
    pairs = longest_common_subsequence(pa, rb) if method == "lcs" else longest_prefix(pa, rb)
    return [(receiver[j][0], provider[i][0]) for i, j in pairs]


@dataclass(frozen=True)
class TransferRecord:
    """Which receiver tensors were initialised from which provider tensors.

    Attributes:
        method: ``'lcs'`` or ``'lp'``.
        pairs: ``(receiver_name, provider_name)`` for matched shape-sequence entries.
        buffers: ``(receiver_name, provider_name)`` for BN buffers that followed their module.
        receiver_length: Length of the receiver shape sequence.
        provider_length: Length of the provider shape sequence.
    """

    method: str
    pairs: tuple[tuple[str, str], ...]
    buffers: tuple[tuple[str, str], ...]
    receiver_length: int
    provider_length: int

    @property
    def moved(self) -> dict[str, str]:
        """Every copied receiver tensor name mapped to its provider tensor name."""
        return dict(self.pairs + self.buffers)

    @property
    def fraction(self) -> float:
        """Share of the receiver shape sequence that was transferred."""
        return len(self.pairs) / self.receiver_length if self.receiver_length else 0.0


def _following_buffers(
    pairs: Sequence[tuple[str, str]],
    receiver_seq: Sequence[ShapeEntry],
    receiver_state: Mapping[str, torch.Tensor],
    provider_state: Mapping[str, torch.Tensor],
) -> list[tuple[str, str]]:
    """Buffers left out of the sequence whose module came whole from one provider module."""
    members: dict[str, list[str]] = {}
    for name, _ in receiver_seq:
        members.setdefault(_split(name)[0], []).append(name)
    moved = dict(pairs)
    out = []
    for name, tensor in receiver_state.items():
        prefix, suffix = _split(name)
        module = members.get(prefix, [])
        if suffix not in _BN_BUFFERS or name in module or not module:
            continue
        if any(m not in moved for m in module):
            continue
        sources = {_split(moved[m])[0] for m in module}
        if len(sources) != 1:
            continue
        source = sources.pop()
        p_name = f"{source}.{suffix}" if source else suffix
        if p_name in provider_state and provider_state[p_name].shape == tensor.shape:
            out.append((name, p_name))
    return out


def transfer_weights(
    provider_state: nn.Module | Mapping[str, torch.Tensor],
    receiver_model: nn.Module,
    method: Method = "lcs",
    match_role: bool = True,
) -> TransferRecord:
    """Initialise ``receiver_model`` in place from matching provider tensors.

    Args:
        provider_state: The provider's ``state_dict`` (e.g. a loaded checkpoint) or model.
        receiver_model: The new candidate; unmatched tensors keep their values.
        method: ``'lcs'`` (longest common subsequence) or ``'lp'`` (longest prefix).
        match_role: See :func:`match_shapes`.

    Returns:
        The record of moved tensors.
    """
    provider = _state(provider_state)
    receiver = receiver_model.state_dict()
    p_seq, r_seq = shape_sequence(provider), shape_sequence(receiver)
    pairs = match_shapes(p_seq, r_seq, method=method, match_role=match_role)
    buffers = _following_buffers(pairs, r_seq, receiver, provider)
    new_state = dict(receiver)
    for r_name, p_name in pairs + buffers:
        new_state[r_name] = (
            provider[p_name]
            .detach()
            .to(dtype=receiver[r_name].dtype, device=receiver[r_name].device)
        )
    receiver_model.load_state_dict(new_state)
    return TransferRecord(method, tuple(pairs), tuple(buffers), len(r_seq), len(p_seq))
