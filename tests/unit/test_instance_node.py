"""Each Asterisk instance has a node name: its ``systemname``, which prefixes every
channel id, so that two nodes sharing one database never produce the same id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callcenter.asterisk.instance import (
    AsteriskInstance,
    InstanceError,
    InstanceSettings,
    check_node_name,
    default_node_name,
)
from callcenter.asterisk.provision import AsteriskInstallation
from tests.unit.test_asterisk_install import fake_apt

__all__ = ["fake_apt"]  # the fixture, imported for pytest


def _options(instance: AsteriskInstance) -> dict[str, str]:
    text = (instance.etc / "asterisk.conf").read_text()
    section = text.split("[options]", 1)[1]
    return dict(line.split("=", 1) for line in section.splitlines() if "=" in line)


def test_two_homes_get_distinct_stable_node_names(tmp_path: Path) -> None:
    tree = AsteriskInstallation("22", tmp_path / "tree")
    a, b = AsteriskInstance(tmp_path / "a"), AsteriskInstance(tmp_path / "b")
    a.setup(tree, InstanceSettings())
    b.setup(tree, InstanceSettings())
    assert a.node != b.node
    assert _options(a)["systemname"] == a.node and _options(b)["systemname"] == b.node
    check_node_name(a.node)
    # Kept across a re-install (rows in the database name the node that owns them).
    before = a.node
    a.setup(tree)
    assert a.node == before == default_node_name(tmp_path / "a")


def test_a_given_node_name_is_kept(tmp_path: Path) -> None:
    instance = AsteriskInstance(tmp_path / "home")
    instance.setup(AsteriskInstallation("22", tmp_path / "tree"), InstanceSettings(node="pbx-2"))
    assert instance.node == "pbx-2"
    assert _options(instance)["systemname"] == "pbx-2"


def test_an_instance_installed_before_node_names_gets_one_and_keeps_it(tmp_path: Path) -> None:
    instance = AsteriskInstance(tmp_path / "home")
    instance.setup(AsteriskInstallation("22", tmp_path / "tree"), InstanceSettings())
    settings = instance.dir / "instance.json"
    data = json.loads(settings.read_text())
    del data["node"]
    settings.write_text(json.dumps(data))
    instance.write_runtime_config()
    assert instance.node == default_node_name(tmp_path / "home")
    assert _options(instance)["systemname"] == instance.node


@pytest.mark.parametrize("node", ["a;b", "a\nastetcdir=/etc", "-pbx", "pbx 1", "x" * 25,
                                  "pbx${SHELL(id)}", "pbx.1"])
def test_a_node_name_that_cannot_be_a_prefix_is_refused(tmp_path: Path, node: str) -> None:
    instance = AsteriskInstance(tmp_path / "home")
    with pytest.raises(InstanceError, match="node name .* is not usable"):
        instance.setup(AsteriskInstallation("22", tmp_path / "tree"), InstanceSettings(node=node))
    assert not (instance.etc / "asterisk.conf").exists()
    with pytest.raises(InstanceError, match="node name '' is not usable"):
        check_node_name("")


def test_install_takes_a_node_name_and_refuses_a_bad_one(fake_apt: Path) -> None:
    """``callcenter asterisk install --node NAME`` (apt and dpkg-deb faked, as in
    test_asterisk_install)."""
    from click.testing import CliRunner

    from callcenter.cli import main

    result = CliRunner().invoke(main, ["--home", str(fake_apt), "asterisk", "install",
                                       "--node", "pbx-east"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "node pbx-east" in result.stdout
    assert AsteriskInstance(fake_apt).node == "pbx-east"
    bad = CliRunner().invoke(main, ["--home", str(fake_apt), "asterisk", "install",
                                    "--node", "east;west"], catch_exceptions=False)
    assert bad.exit_code == 1
    assert "node name 'east;west' is not usable" in bad.stderr
    assert AsteriskInstance(fake_apt).node == "pbx-east"
