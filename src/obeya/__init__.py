"""Obeya: an open-source Value Stream Management Platform."""

__version__ = "0.1.0"
