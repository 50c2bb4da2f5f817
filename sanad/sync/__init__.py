"""Field-kit sync: station keys, signed and encrypted packets, idempotent central import."""
