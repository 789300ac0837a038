"""The HTTP front door: app factory, request ids, generic error handling (surfaces plug in here)."""

from questline.http.app import create_app

__all__ = ["create_app"]
