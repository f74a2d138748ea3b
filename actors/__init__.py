"""Actors that follow the log and derive what recall needs."""
