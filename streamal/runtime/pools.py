"""The names of the two worker pools every campaign runs on (Parsl executor labels)."""

#: Simulation tasks: one pinned worker per simulator core (or per MPI core group).
SIM_POOL = "sim"
#: Training and prediction tasks: the worker(s) that own the trainer ranks' cores and GPUs.
TRAIN_POOL = "train"
POOLS = (SIM_POOL, TRAIN_POOL)
