"""The HTTP API: Customer.io's Track API, broadcasts, and the native API."""

from journeys.server.app import create_app

__all__ = ["create_app"]
