"""The pipeline: the Memory API, the CLI, and (later) the runners, service and ingest."""

from pipeline.memory import Memory

__all__ = ["Memory"]
