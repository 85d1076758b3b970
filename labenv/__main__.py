"""Run the labenv command line with ``python -m labenv``."""

from labenv.cli import main

main()
