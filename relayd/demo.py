"""relayd.demo (being written)."""
