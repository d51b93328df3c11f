"""relayd.store (being written)."""
