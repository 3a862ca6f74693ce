"""prunescope's analysis backend: computes and caches, never draws."""

__version__ = "0.1.0"
