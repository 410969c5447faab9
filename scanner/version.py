"""vscan's version (also the installed distribution's: pyproject reads it from here)."""

__version__ = "0.2.0"
