"""relayd.schedules.model (being written)."""
