"""The rendered users.sh run in a real container: quiet on first start with ~/.ssh in place, and on restart."""

from __future__ import annotations

import pytest

from labenv.lab.accounts import USERS_SCRIPT_PATH, accounts_on
from labenv.lab.labfile import load_lab
from labenv.lab.render import FileSpec
from labenv.lab.secrets import load_or_create_secrets
from labenv.runtime.archive import owner_ids, pack_files
from labenv.runtime.engine import connect
from tests.e2e.conftest import PREFIX
from tests.e2e.runtime_fixtures import build_idle_image

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def client():
    return connect()


@pytest.fixture
def container(client, tmp_path):
    """A sleeping base container holding the final host's users.sh and one pre-copied authorized_keys."""
    lab = load_lab(None, name=f"{PREFIX}users")
    final = lab.host_with_role("final")
    from labenv.lab.render import render_host_files

    files = render_host_files(lab, final, load_or_create_secrets(tmp_path, lab))
    user = accounts_on(lab, final)[0]
    staged = {
        USERS_SCRIPT_PATH: files[USERS_SCRIPT_PATH],
        f"{user.home}/.ssh/authorized_keys": FileSpec(b"ssh-ed25519 AAAA test\n", 0o600, user.name),
    }
    created = client.containers.run(
        build_idle_image(client), name=f"labenv-{PREFIX}users-script", detach=True, network_mode="none"
    )
    try:
        assert created.put_archive("/", pack_files(staged, owner_ids(lab)))
        yield created, lab, final
    finally:
        created.remove(force=True)


def _run_script(container) -> tuple[int, str]:
    result = container.exec_run(["sh", USERS_SCRIPT_PATH], user="root")
    return result.exit_code, result.output.decode(errors="replace")


def test_users_script_quiet_twice(container):
    box, lab, host = container
    first = _run_script(box)
    second = _run_script(box)
    assert first == (0, "")
    assert second == (0, "")
    for user in accounts_on(lab, host):
        result = box.exec_run(["stat", "-c", "%u:%g %a", user.home, f"{user.home}/.bashrc", f"/var/mail/{user.name}"])
        assert result.exit_code == 0, result.output
        home, bashrc, mailbox = result.output.decode().splitlines()
        assert home == f"{user.uid}:{user.uid} 755"
        assert bashrc.startswith(f"{user.uid}:{user.uid} ")
        assert mailbox.split()[1] == "660"
        assert box.exec_run(["id", "-u", user.name]).output.decode().strip() == str(user.uid)
