"""The queues' REST API: publishing messages, and queue administration."""
