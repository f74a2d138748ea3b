"""Folds over the event log: DuckDB tables and FAISS indexes, rebuildable by replay."""
