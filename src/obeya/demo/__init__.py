"""A realistic synthetic organisation, simulated deterministically from a seed (see docs/demo.md)."""

from obeya.demo.generator import DemoReport, generate, load_demo
from obeya.demo.organisation import DEPENDENCIES, STREAMS, WORKFLOW

__all__ = ["DEPENDENCIES", "STREAMS", "WORKFLOW", "DemoReport", "generate", "load_demo"]
