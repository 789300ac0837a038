"""questline: a self-hosted progression engine — product events in, progression out."""

__version__ = "0.1.0"
