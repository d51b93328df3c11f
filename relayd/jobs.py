"""relayd.jobs (being written)."""
