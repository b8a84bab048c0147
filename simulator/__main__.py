"""``python -m simulator`` is the ``inmail-sim`` command."""

from simulator.cli import main

raise SystemExit(main())
