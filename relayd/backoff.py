"""relayd.backoff (being written)."""
