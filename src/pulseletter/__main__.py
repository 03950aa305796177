"""Allow ``python -m pulseletter``."""

from pulseletter.cli import main

main()
