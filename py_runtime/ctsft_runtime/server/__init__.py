"""The runtime server: sockets by role, dispatch, streams with back-pressure, cancellation."""

from .app import Server
from .endpoints import Endpoints

__all__ = ["Endpoints", "Server"]
