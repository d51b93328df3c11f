from __future__ import annotations

from relayd.cli import main

main()
