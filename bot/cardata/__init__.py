"""BMW CarData: the official, read-only backend (OAuth device flow, REST, MQTT stream) and its simulator."""
