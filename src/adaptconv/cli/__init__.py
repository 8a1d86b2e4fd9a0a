"""The ``adaptconv`` command line."""
