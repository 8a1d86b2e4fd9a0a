"""The error of ``adaptconv visualize`` that is the user's to fix (the command line prints its message alone)."""

__all__ = ["VisualizeError"]


class VisualizeError(ValueError):
    """A bad image, block, pixel, picture kind or model for a picture: the message says what and why."""
