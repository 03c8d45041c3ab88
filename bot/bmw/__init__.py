"""The BMW i Remote API: client, models, errors and simulator. Knows nothing of Telegram or SQLite."""
