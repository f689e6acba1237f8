"""systemd/ringkvd.service: systemd-analyze accepts it without a warning,
its hardening stays in place, and the config it points at is valid."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "ringkvd.service"
EXAMPLE_CONFIG = ROOT / "etc" / "ringkv.toml"

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze missing (Debian package systemd)")


def unit_with_built_binary(tmp_path, ringkvd):
    """A copy of the unit whose ExecStart runs the built binary: verify
    checks that the binary exists and is executable."""
    text = UNIT.read_text()
    assert "ExecStart=/usr/bin/ringkvd " in text
    copy = tmp_path / "ringkvd.service"
    copy.write_text(text.replace("ExecStart=/usr/bin/ringkvd ", f"ExecStart={ringkvd} "))
    return copy


def directives(text):
    d = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            d.setdefault(k.strip(), []).append(v.strip())
    return d


@needs_analyze
def test_systemd_analyze_verify_is_clean(tmp_path, binaries):
    copy = unit_with_built_binary(tmp_path, binaries["ringkvd"])
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    about_unit = [l for l in out.splitlines() if "ringkvd" in l]
    assert not about_unit, "systemd-analyze warns about the unit:\n" + "\n".join(about_unit)


@needs_analyze
def test_systemd_analyze_security_exposure_is_low(tmp_path, binaries):
    copy = unit_with_built_binary(tmp_path, binaries["ringkvd"])
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(copy)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    # 10 is an unhardened service; the unit scores ~1.5. Above 2.5 means
    # hardening was dropped.
    assert float(m.group(1)) <= 2.5, r.stdout


def test_unit_has_the_promised_directives():
    d = directives(UNIT.read_text())
    want = {
        "Type": "notify",
        "ExecStart": "/usr/bin/ringkvd run -c /etc/ringkv/ringkv.toml",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "WatchdogSec": "30s",
        "Restart": "on-failure",
        "User": "ringkv",
        "Group": "ringkv",
        "StateDirectory": "ringkv",
        "LimitNOFILE": "65536",
        "TimeoutStopSec": "30s",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet": "",
    }
    for k, v in want.items():
        assert d.get(k) == [v], f"{k}={d.get(k)}, want {v!r}"
    # The daemon pings at WatchdogSec/2; a config error (exit 2) is not retried.
    assert d.get("RestartPreventExitStatus") == ["2"]


def test_example_config_matches_the_unit(cluster):
    """etc/ringkv.toml is what packages install as /etc/ringkv/ringkv.toml:
    it must pass check-config and keep its data in the unit's StateDirectory."""
    assert EXAMPLE_CONFIG.is_file(), f"{EXAMPLE_CONFIG} is missing"
    r = cluster.run_ringkvd("check-config", str(EXAMPLE_CONFIG))
    assert r.rc == 0, r
    m = re.search(r'^\s*data_dir\s*=\s*"([^"]*)"', EXAMPLE_CONFIG.read_text(), re.M)
    assert m and m.group(1) == "/var/lib/ringkv", f"data_dir in {EXAMPLE_CONFIG}: {m and m.group(1)}"
