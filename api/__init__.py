"""The HTTP API of sentra-graph: ``create_app()`` builds it, ``serve()`` runs it."""

from api.app import create_app

__all__ = ["create_app"]
