"""The shipped configuration: `default.toml`, every setting with its default and why."""
