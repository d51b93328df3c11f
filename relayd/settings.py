"""relayd.settings (being written)."""
