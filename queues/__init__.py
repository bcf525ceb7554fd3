"""Queues: broker backends, the publish API, the transactional outbox and its relay."""
