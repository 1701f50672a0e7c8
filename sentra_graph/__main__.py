"""``python -m sentra_graph`` is the ``sentra-graph`` command."""

from sentra_graph.cli import main

main()
