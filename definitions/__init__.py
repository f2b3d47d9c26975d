"""The journey language: YAML loading, schema, compiler, plans and the journey workflow."""

from definitions.compiler import Library
from definitions.diagnostics import Diagnostic
from definitions.plan import Plan

__all__ = ["Diagnostic", "Library", "Plan"]
