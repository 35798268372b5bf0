"""docker-compose.yml validates with Compose itself and has the services the README promises."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> list[str] | None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid():
    compose = _compose()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {**os.environ, "SECRET_KEY": "a-test-secret-key-of-enough-length"}
    command = [*compose, "--profile", "gpu", "--profile", "pacs", "config"]
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    resolved = out.stdout  # the normalised YAML Compose would run
    for needle in (
        "  db:",
        "  migrate:",
        "  web:",
        "  worker:",
        "pg_isready",
        "service_completed_successfully",
        "service_healthy",
        "driver: nvidia",
        "- gpu",
        "cxrlab",
        "  pacs:",
        "DICOM_WEB_PLUGIN_ENABLED",
        "DICOMWEB_URL",
    ):
        assert needle in resolved, needle


def test_compose_refuses_to_start_without_a_secret():
    compose = _compose()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    out = subprocess.run([*compose, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "SECRET_KEY" in out.stderr
