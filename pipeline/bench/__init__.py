"""Benchmarks and evaluation (`mnemo bench`, `mnemo eval`); imported by nothing but the CLI."""
