"""The pipeline: the Memory API, the CLI, the runners, service and ingest.

The caller's front door is the package above (``from mnemoflow import Memory``).
"""
