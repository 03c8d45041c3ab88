"""Pytest fixtures for the loopback Bot API server (filled in by the sandbox work)."""
