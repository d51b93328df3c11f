"""``relayd run`` on an address another program holds: exit 2 and one line naming ``listen``, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import write_env_config


def test_run_on_a_busy_port_exits_2_with_one_line_naming_listen(tmp_path: Path) -> None:
    (tmp_path / "schedules").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "relayd.toml"
        write_env_config(
            config,
            {
                "endpoint": "http://127.0.0.1:9",  # never reached: the server binds before the platform is listed
                "access_key": "AKLTtest",
                "secret_key": "c2VjcmV0",
                "schedules_dir": tmp_path / "schedules",
                "state_path": tmp_path / "state" / "state.db",
                "listen": f"127.0.0.1:{port}",
            },
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYD_", "VOLC_"))}
        result = subprocess.run(
            [sys.executable, "-m", "relayd", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    problems = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert len(problems) == 1
    assert f"127.0.0.1:{port}" in problems[0] and "already in use" in problems[0] and "`listen`" in problems[0]
