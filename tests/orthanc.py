"""A real PACS for the tests: Debian's Orthanc with its DICOMweb plugin, on a free loopback port.

Skipped, saying why, where the binary is missing (scripts/test.sh installs it, like Chromium)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port, stop

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD = "lab", "orthanc-test-password"


@dataclass
class Orthanc:
    """A running Orthanc: its REST root and DICOMweb root, with the test's credentials."""

    base: str

    @property
    def dicomweb(self) -> str:
        return self.base + "/dicom-web"

    def _request(self, method: str, path: str, data: bytes | None = None) -> bytes:
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", "Basic " + b64encode(f"{USER}:{PASSWORD}".encode()).decode())
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read()

    def store(self, *files: bytes) -> None:
        """Store Part 10 files through the REST API."""
        for data in files:
            self._request("POST", "/instances", data)

    def clear(self) -> None:
        """Delete every patient (and so every study and film)."""
        for patient in json.loads(self._request("GET", "/patients")):
            self._request("DELETE", f"/patients/{patient}")

    def statistics(self) -> dict:
        """Orthanc's counters (patients, studies, instances)."""
        return json.loads(self._request("GET", "/statistics"))


def orthanc_binary() -> str | None:
    """The Orthanc executable with its DICOMweb plugin, or None."""
    binary = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
    return binary if binary and PLUGIN.exists() else None


@contextlib.contextmanager
def running_orthanc(folder: Path) -> Iterator[Orthanc]:
    """Start Orthanc with storage in `folder`, HTTP basic auth on, DICOM networking off; stop it after."""
    binary = orthanc_binary()
    if binary is None:
        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)")
    port = free_port()
    config = {
        "Name": "cxrlab-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "Plugins": [str(PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("w")
    proc = subprocess.Popen([binary, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    server = Orthanc(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.statistics()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Orthanc did not start:\n{(folder / 'orthanc.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield server
    finally:
        stop(proc)
        log.close()
