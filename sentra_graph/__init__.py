"""sentra-graph: expose coordinated fake-account farms that distil a model through its API."""

__version__ = "0.1.0"
