"""The ``victor`` command."""
