"""relayd.reconcile (being written)."""
