"""``relayd emulator`` as a process: prints endpoint and keys, serves signed requests, exits cleanly on SIGTERM.

The command module is loaded from its file so this test does not depend on every other command family
importing cleanly (``relayd.cli`` imports them all); the command object is the one ``relayd emulator`` runs.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

from relayd.emulator import Emulator, EmulatorConfig

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("relayd_cli_emulator", {str(ROOT / "relayd/cli/emulator.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.emulator_command(sys.argv[1:])
"""


async def read_until(stream: asyncio.StreamReader, pattern: str) -> list[str]:
    lines: list[str] = []
    async with asyncio.timeout(20):
        while not lines or not re.search(pattern, lines[-1]):
            line = await stream.readline()
            assert line, f"process ended early; output so far: {lines}"
            lines.append(line.decode().rstrip())
    return lines


async def test_cli_serves_until_sigterm(raw) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCH, "--port", "0", "--access-key", "AKLTcli", "--secret-key", "cli-secret",
        "--max-task-seconds", "30", "--admin",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = await read_until(proc.stdout, r"RELAYD_ENDPOINT=")
        url = re.search(r"listening on (http://\S+)", "\n".join(lines))[1]
        assert "RELAYD_ACCESS_KEY=AKLTcli RELAYD_SECRET_KEY=cli-secret" in lines[-1]
        assert f"RELAYD_ENDPOINT={url}" in lines[-1]
        handle = Emulator(EmulatorConfig(access_key="AKLTcli", secret_key="cli-secret"))
        handle.url = url  # only used to address the raw client
        reply = await raw(handle).call("ListPullToPushTaskV2", {})
        assert reply.status == 200 and reply.result["Pagination"]["TotalCount"] == 0
        wrong = await raw(handle, secret_key="nope").call("ListPullToPushTaskV2", {})
        assert wrong.code == "SignatureDoesNotMatch"
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            code = await proc.wait()
    assert code == 0


async def run_to_end(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCH, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT
    )
    async with asyncio.timeout(20):
        out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_cli_quirk_typos_list_the_valid_choices() -> None:
    code, out = await run_to_end("--port", "0", "--quirk", "destination=exclusiv")
    assert code == 2 and "valid values: shared, exclusive, exclusive-touching-ok" in out
    code, out = await run_to_end("--port", "0", "--quirk", "destinaton=exclusive")
    assert code == 2 and "unknown quirk 'destinaton'" in out and "relaunch_from" in out
    code, out = await run_to_end("--port", "0", "--quirk", "destination")
    assert code == 2 and "expected NAME=VALUE" in out
    code, out = await run_to_end("--port", "0", "--profile", "paranoid")
    assert code == 2 and "lenient" in out and "byteplus" in out


async def test_cli_profile_and_quirks(raw) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCH, "--port", "0", "--profile", "byteplus", "--quirk", "destination=exclusive",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        text = "\n".join(await read_until(proc.stdout, r"RELAYD_ENDPOINT="))
        assert "profile byteplus" in text and "destination=exclusive" in text and "title_limit=10" in text
        assert "RELAYD_REGION=ap-singapore-1" in text
        handle = Emulator(EmulatorConfig())
        handle.url = re.search(r"listening on (http://\S+)", text)[1]
        reply = await raw(handle, region="ap-singapore-1").call("ListPullToPushTaskV2", {})
        assert reply.status == 200 and reply.body["ResponseMetadata"]["Region"] == "ap-singapore-1"
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
