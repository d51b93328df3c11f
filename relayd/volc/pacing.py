"""relayd.volc.pacing (being written)."""
