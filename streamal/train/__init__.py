"""DDP training inside the train pool: spec, launcher, rank process, checkpoints."""
