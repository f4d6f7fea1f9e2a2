"""TLS 1.2 (and later 1.3), implemented for teaching: messages, key derivation, records, client, server."""
