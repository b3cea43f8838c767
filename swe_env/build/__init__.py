"""Host-side git mirrors and scrubbed checkouts; the layered images (os, base, env, instance)."""
