"""Adapters to the store server: the HTTP client, and the durable member-code nonce cache."""
