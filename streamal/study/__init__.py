"""Scaling studies: one campaign at several node counts and workflows (``streamal scale``),
and their Table-V-like report (``streamal scale-report``)."""
