"""Errors that name the input that was wrong and what would be right."""


class StreamalError(Exception):
    """Base class for every error streamal raises on purpose."""


class ConfigError(StreamalError):
    """A configuration value is wrong; the message names its key path."""


class ParameterError(StreamalError, ValueError):
    """Simulation parameters are outside their space; the message names the sample."""


class SimulationError(StreamalError):
    """A simulator failed on a chunk of samples."""


class PluginError(StreamalError):
    """A plugin name is unknown or a plugin does not satisfy its interface."""


class StoreError(StreamalError):
    """The sample store is unreadable or does not match the run."""
