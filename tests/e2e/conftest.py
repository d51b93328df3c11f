"""Fixtures for end-to-end tests: the integration suite's emulator factory, shared."""

from __future__ import annotations

from tests.integration.conftest import emulator

__all__ = ["emulator"]
