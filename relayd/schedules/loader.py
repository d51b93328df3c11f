"""relayd.schedules.loader (being written)."""
