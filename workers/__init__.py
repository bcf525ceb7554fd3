"""Workers: the handler registry, the handler context and the per-queue worker runtime."""
