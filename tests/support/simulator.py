"""Pytest fixtures for the BMW simulator (filled in by the simulator work)."""
