"""The `mnemo` command line (`python -m mnemoflow.pipeline.cli` runs it too)."""
