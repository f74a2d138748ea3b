"""The HTTP routes by family: writes, reads, the mem0-compatible pair, and the service's own.
Each module's `add_routes` puts its routes on an app; `mnemoflow.pipeline.http.app` calls
them all."""
