"""relayd.volc.client (being written)."""
