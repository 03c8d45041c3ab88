"""Self-hosted Telegram bot for BMW i3 owners."""

__version__ = "0.1.0"
