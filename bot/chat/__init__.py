"""Telegram chat handlers: one module per intent, plus what they share."""
