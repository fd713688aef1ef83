"""The single source of hubext's version (read by hatchling)."""

__version__ = "0.1.0.dev0"
