"""The Memory API and what it stands on: the runtime that opens a home, configuration, the
actors' topology, the errors, and the HTTP client (the remote half of the API)."""
