"""Paths from outside (``--home``, ``CALLCENTER_CACHE``) never reach Asterisk's config.

``asterisk.conf`` names the instance's directories; a ``;`` in a path starts a
comment there (Asterisk would read another directory), a newline adds a
directive. Such a home is refused before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callcenter.asterisk.instance import (
    AsteriskInstance,
    InstanceError,
    check_config_path,
    check_socket_path,
)
from callcenter.asterisk.provision import AsteriskInstallation


@pytest.mark.parametrize("name", ["x;y", "x\nastetcdir => /etc", "x${SHELL(id)}", "my home",
                                  'x"y', "x\\y", "x#y"])
def test_hostile_home_is_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    home = tmp_path / name
    installation = AsteriskInstallation("22", tmp_path / "tree")
    with pytest.raises(InstanceError, match="the home directory .* which Asterisk's config "
                                            "files cannot hold safely"):
        AsteriskInstance(home).setup(installation)
    assert not home.exists()


def test_hostile_cache_is_refused(tmp_path: Path) -> None:
    installation = AsteriskInstallation("22", tmp_path / "cache;x" / "tree")
    with pytest.raises(InstanceError, match=r"the Asterisk cache \(CALLCENTER_CACHE\) .* ';'"):
        AsteriskInstance(tmp_path / "home").setup(installation)


@pytest.mark.parametrize("path", ["/var/lib/callcenter", "/tmp/pytest-of-root/pytest-1/home0",
                                  "/root/.cache/callcenter/asterisk-22.10.1-amd64-1a2b/root",
                                  "/srv/cc_2026+test@site,a=b~"])
def test_ordinary_paths_pass(path: str) -> None:
    check_config_path(Path(path), "the home directory")


@pytest.mark.parametrize("uri", ["http://deb.example/debian main\ndeb http://evil/ x",
                                 "http://x/debian extra-suite", "ftp://x/debian", ""])
def test_a_mirror_cannot_add_apt_sources(uri: str) -> None:
    from callcenter.asterisk.provision import ProvisionError, check_mirror

    with pytest.raises(ProvisionError, match="invalid Debian mirror"):
        check_mirror(uri)


def test_a_plain_mirror_passes() -> None:
    from callcenter.asterisk.provision import check_mirror

    check_mirror("http://mirror.internal:3142/debian")
    check_mirror("file:///srv/mirror/debian")


def test_a_home_too_deep_for_the_control_socket_is_refused(tmp_path: Path) -> None:
    """Asterisk cannot bind a console socket path over 107 bytes (AF_UNIX): the error
    names the path instead of a start that fails later, obscurely."""
    home = tmp_path / ("h" * max(1, 110 - len(str(tmp_path))))
    installation = AsteriskInstallation("22", tmp_path / "tree")
    socket = re.escape(str(home / "asterisk" / "run" / "asterisk.ctl"))
    with pytest.raises(InstanceError, match=rf"the Asterisk control socket {socket} is "
                                            r"\d+ bytes long, over the 107"):
        AsteriskInstance(home).setup(installation)
    assert not home.exists()


def test_control_socket_path_limit_is_107_bytes() -> None:
    check_socket_path(Path("/" + "a" * 106))
    with pytest.raises(InstanceError, match="is 108 bytes long"):
        check_socket_path(Path("/" + "a" * 107))
