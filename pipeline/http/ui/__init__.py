"""The dashboard at /ui: pages rendered by the server, with vendored chart and graph libraries."""
