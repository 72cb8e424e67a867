"""``callcenter asterisk install`` against a fake apt: progress on stderr, options stored.

The fake ``apt-get``/``apt-cache``/``dpkg-deb`` speak the command-line protocol the
provisioner relies on (``-o Dir::Cache=…``, ``Candidate:`` in ``apt-cache policy``,
``Get:N`` lines, .debs in ``archives/``, ``dpkg-deb -x DEB DIR``), so the real
install path runs without a network.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from callcenter.asterisk import provision
from callcenter.asterisk.provision import download_progress
from callcenter.cli import main

VERSION = "1:22.9.0~dfsg+~cs6.14.60671143-1"
PACKAGES = [("asterisk", "1,234 kB"), ("libssl3t64", "2,240 kB"), ("asterisk-modules", "5,000 kB")]

_APT_GET = f"""
import sys
import time
from pathlib import Path
args = sys.argv[1:]
opts = dict(a.split("=", 1) for a in args if "::" in a)
if "update" in args:
    sys.exit(0)
archives = Path(opts["Dir::Cache"]) / "archives"
print("Need to get 8,474 kB of archives.", flush=True)
for i, (name, size) in enumerate({PACKAGES!r}, 1):
    print(f"Get:{{i}} http://127.0.0.1:9/debian sid/main amd64 {{name}} amd64 {VERSION} [{{size}}]",
          flush=True)
    partial = archives / "partial" / f"{{name}}_amd64.deb"
    partial.write_bytes(b"\\0" * 1_000_000)
    time.sleep(0.3)  # the network's time, for the byte counter to see
    partial.rename(archives / partial.name)
print("Download complete and in download only mode", flush=True)
"""

_APT_CACHE = f"""
print("asterisk:\\n  Installed: (none)\\n  Candidate: {VERSION}\\n")
"""

_DPKG_DEB = """
import platform, sys
from pathlib import Path
root = Path(sys.argv[3])
arch = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}[platform.machine()]
loader = {"x86_64": "ld-linux-x86-64.so.2", "aarch64": "ld-linux-aarch64.so.1"}[platform.machine()]
lib = root / "usr" / "lib" / arch
lib.mkdir(parents=True, exist_ok=True)
(lib / loader).write_bytes(b"")
"""


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("apt-get", _APT_GET), ("apt-cache", _APT_CACHE), ("dpkg-deb", _DPKG_DEB)):
        script = bin_dir / name
        script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("CALLCENTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CALLCENTER_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    monkeypatch.delenv("CALLCENTER_HOME", raising=False)
    monkeypatch.setattr(provision, "PROGRESS_EVERY", 0.05)
    return tmp_path / "home"


def test_install_shows_each_package_and_stores_the_rtp_range(fake_apt: Path) -> None:
    result = CliRunner().invoke(main, ["--home", str(fake_apt), "asterisk", "install",
                                       "--rtp-ports", "31000-31099"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    progress = result.stderr.splitlines()
    assert "Need to get 8,474 kB of archives." in progress
    assert [line for line in progress if line.startswith("  [")] == [
        f"  [1] asterisk {VERSION} (1,234 kB)",
        f"  [2] libssl3t64 {VERSION} (2,240 kB)",
        f"  [3] asterisk-modules {VERSION} (5,000 kB)",
    ]
    assert any(line.endswith("unpacking 3 packages") for line in progress), progress
    counted = [float(m.group(1)) for line in progress
               if (m := re.fullmatch(r"  (\d+\.\d) MB downloaded", line))]
    assert counted and counted == sorted(counted) and counted[-1] <= 3.0, progress
    assert "RTP 31000-31099/udp" in result.stdout
    settings = json.loads((fake_apt / "asterisk" / "instance.json").read_text())
    assert (settings["rtp_start"], settings["rtp_end"]) == (31000, 31099)
    rtp_conf = (fake_apt / "asterisk" / "etc" / "rtp.conf").read_text()
    assert "rtpstart=31000\nrtpend=31099\n" in rtp_conf

    # A later install without the option keeps the stored range.
    again = CliRunner().invoke(main, ["--home", str(fake_apt), "asterisk", "install"],
                               catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert json.loads((fake_apt / "asterisk" / "instance.json").read_text())["rtp_end"] == 31099


@pytest.mark.parametrize("value", ["10000", "10999-10000", "80-1000", "10000-70000", "a-b"])
def test_install_rejects_a_bad_rtp_range(fake_apt: Path, value: str) -> None:
    result = CliRunner().invoke(main, ["--home", str(fake_apt), "asterisk", "install",
                                       "--rtp-ports", value], catch_exceptions=False)
    assert result.exit_code == 2
    assert f"Invalid value for '--rtp-ports': {value!r}: expected START-END" in result.stderr
    assert not (fake_apt / "asterisk").exists()


def test_download_progress_lines() -> None:
    assert download_progress(
        "Get:12 http://127.0.0.1/debian sid/main amd64 libssl3t64 amd64 3.3.2-2 [2,240 kB]\n"
    ) == "  [12] libssl3t64 3.3.2-2 (2,240 kB)"
    assert download_progress("Need to get 85.2 MB of archives.") == \
        "Need to get 85.2 MB of archives."
    assert download_progress("Reading package lists...") is None
