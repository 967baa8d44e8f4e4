"""Operator settings: TRAFFICDL_OPERATOR_* parsed when the operator starts, never at import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from trafficdl_operator.settings import Settings, SettingsError


def test_settings_from_env():
    s = Settings.from_env({"TRAFFICDL_OPERATOR_RECONCILE_INTERVAL": "2.5",
                           "TRAFFICDL_OPERATOR_WORKER_IMAGE": "reg/w:1",
                           "TRAFFICDL_OPERATOR_METRICS_PORT": "0",
                           "TRAFFICDL_OPERATOR_ALLOW_HOST_PATH": "True"})
    assert (s.reconcile_interval, s.worker_image, s.metrics_port) == (2.5, "reg/w:1", 0)
    assert s.allow_host_path is True
    assert s.master_image == Settings().master_image
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(("name", "value", "kind"), [
    ("RECONCILE_INTERVAL", "10s", "float"),
    ("METRICS_PORT", "80.5", "int"),
    ("POD_GRACE_SECONDS", "", "int"),
])
def test_a_bad_value_names_its_variable(name: str, value: str, kind: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({f"TRAFFICDL_OPERATOR_{name}": value})
    assert str(info.value) == f"TRAFFICDL_OPERATOR_{name}={value!r} is not a valid {kind}"


def _run(code: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_importing_the_handlers_reads_no_setting() -> None:
    # A value that cannot parse: reading it at import would fail the import.
    out = _run(["-c", "import trafficdl_operator.main"],
               TRAFFICDL_OPERATOR_RECONCILE_INTERVAL="soon")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("command", [["-m", "trafficdl_operator"],
                                     ["-m", "trafficdl.cli", "operator"]])
def test_the_operator_command_refuses_a_bad_setting_in_one_line(command: list[str]) -> None:
    out = _run(command, TRAFFICDL_OPERATOR_STATUS_TIMEOUT="fast")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert lines[0].endswith(
        ": error: TRAFFICDL_OPERATOR_STATUS_TIMEOUT='fast' is not a valid float")
