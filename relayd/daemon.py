"""relayd.daemon (being written)."""
