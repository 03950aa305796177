"""pulseletter: a self-hosted weekly email newsletter composer and sender."""

__version__ = "0.1.0"
