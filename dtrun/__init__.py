"""dtrun: run machine-learning workflows as containers on a local or remote Docker daemon."""

__version__ = "0.1.0"
