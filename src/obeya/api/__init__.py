"""The HTTP face of Obeya: REST API v1 (OpenAPI at /docs) and the web pages."""

from obeya.api.app import create_app

__all__ = ["create_app"]
