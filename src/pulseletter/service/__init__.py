"""Use cases: the only place that wires content, compose, mail and dispatch together.

The CLI, the scheduler and the web app call these functions and present the results.
"""

from pulseletter.service.app import App

__all__ = ["App"]
