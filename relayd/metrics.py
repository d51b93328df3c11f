"""relayd.metrics (being written)."""
