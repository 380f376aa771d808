"""Policies: where to simulate next."""

from streamal.policy.base import Policy
from streamal.policy.checks import check_policy
from streamal.policy.uniform import SweepPolicy, UniformPolicy

__all__ = ["Policy", "SweepPolicy", "UniformPolicy", "check_policy"]
