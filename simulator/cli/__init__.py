"""The ``inmail-sim`` command line: parses arguments, calls the experiments, prints through io."""

from simulator.cli.main import main

__all__ = ["main"]
