"""relayd: keeps Volcengine Live pull-to-push relay tasks in line with declared schedules."""

from __future__ import annotations

__version__ = "0.1.0"
