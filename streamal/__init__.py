"""streamal: asynchronous simulate → train → choose campaigns on HPC nodes."""

__version__ = "0.1.0"
