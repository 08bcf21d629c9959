"""The HTTP API of ``ideamine serve`` (FastAPI; OpenAPI at ``/openapi.json``)."""

from ideamine.api.app import create_app
from ideamine.api.state import ServerSettings, ServerState

__all__ = ["ServerSettings", "ServerState", "create_app"]
