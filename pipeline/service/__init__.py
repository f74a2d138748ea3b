"""mnemoflow running: the Service, its Ray runner and actor names, and the query RPC that
other Ray jobs call."""
