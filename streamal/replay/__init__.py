"""Replay model: a discrete-event simulation of the workflows from measured costs.

Example::

    from streamal.replay import CostModel, Phase, Resources, Workload, replay

    work = Workload("streaming", (Phase(300, 4), Phase(200, 3)), val=150, test=150, study=300)
    costs = CostModel(sim_sample_s=0.2, train_sample_epoch_s=0.004, sim_slowdown=1.3)
    result = replay(work, Resources(sim_workers=4), costs)
    print(result.makespan, result.spans()["S'0"])
"""

from streamal.replay.costs import CostModel, Costs, TraceCosts
from streamal.replay.flows import ReplayResult, replay
from streamal.replay.workload import Phase, Resources, Workload

__all__ = [
    "CostModel",
    "Costs",
    "Phase",
    "ReplayResult",
    "Resources",
    "TraceCosts",
    "Workload",
    "replay",
]
