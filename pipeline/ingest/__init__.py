"""Batch ingestion: the source formats `mnemo ingest` reads and the job that stores and embeds
them."""
