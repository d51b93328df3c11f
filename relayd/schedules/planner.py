"""relayd.schedules.planner (being written)."""
