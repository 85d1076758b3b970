"""Tests of the lab images: what the built images contain, how they are layered, and the entrypoint."""

import io
import tarfile
import time

import docker
import docker.errors
import pytest

from labenv import __version__
from labenv.runtime import images, wheels

ROLES = ("relay", "final", "syslog", "spamd", "dns")


@pytest.fixture(scope="module")
def client():
    try:
        docker_client = docker.from_env()
        docker_client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine: {exc}")
    yield docker_client
    docker_client.close()


@pytest.fixture(scope="module")
def references(client):
    return images.ensure_images(client)


def run(client, image, *command):
    """Run command in a throw-away container without network and return its output."""
    output = client.containers.run(image, list(command), entrypoint=[], network_mode="none", remove=True)
    return output.decode()


def exit_status(client, image, *command):
    """Run command in a throw-away container and return its exit status."""
    container = client.containers.run(image, list(command), entrypoint=[], network_mode="none", detach=True)
    try:
        return container.wait(timeout=60)["StatusCode"]
    finally:
        container.remove(force=True)


def wait_for_log(container, text, timeout=30.0):
    """Return the container's log once it contains text; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = container.logs().decode()
        if text in logs:
            return logs
        time.sleep(0.2)
    pytest.fail(f"{text!r} did not appear in the log within {timeout} s:\n{container.logs().decode()}")


def put_file(container, path, content):
    """Copy one file into a created container, as the runtime does with rendered configuration."""
    data = content.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(path.rsplit("/", 1)[1])
        info.size = len(data)
        info.mode = 0o755
        archive.addfile(info, io.BytesIO(data))
    assert container.put_archive(path.rsplit("/", 1)[0], buffer.getvalue())


# Unit tests of the hashing and requirement handling: no Docker needed.


def test_requirement_name_forms():
    assert wheels.requirement_name("dnspython>=2.4") == "dnspython"
    assert wheels.requirement_name("Foo_Bar[extra]~=1.0") == "foo-bar"
    assert wheels.requirement_name("docker") == "docker"
    assert wheels.requirement_name("pyspf ; python_version>'3'") == "pyspf"


def test_container_requirements_drop_host_only():
    names = {wheels.requirement_name(req) for req in wheels.container_requirements(wheels.project_root())}
    assert "docker" not in names
    assert "fabric" not in names
    assert {"aiosmtpd", "dnspython", "dkimpy", "click", "rich"} <= names


@pytest.mark.parametrize(
    "filename, fits",
    [
        ("rich-15.0.0-py3-none-any.whl", True),
        ("cffi-2.1.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", True),
        ("cryptography-50.0.2-cp311-abi3-manylinux_2_34_x86_64.whl", True),
        ("cryptography-44.0.0-cp37-abi3-manylinux_2_28_x86_64.whl", True),
        ("demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", False),
        ("demo-1.0-cp39-abi3-manylinux_2_38_x86_64.whl", False),
        ("demo-1.0-cp311-cp311-linux_x86_64.whl", False),
        ("demo-1.0-cp311-cp311-manylinux_2_17_aarch64.whl", False),
        ("demo-1.0-cp311-cp311-win_amd64.whl", False),
    ],
)
def test_wheel_fits_container(monkeypatch, filename, fits):
    monkeypatch.setattr(wheels.platform, "machine", lambda: "x86_64")
    assert wheels.wheel_fits_container(filename) is fits


def test_role_reference_tracks_project_hash():
    base = "labenv/base:0123456789ab"
    relay = images.role_image_reference("relay", base, "project-a", "deps")
    assert relay.startswith("labenv/relay:")
    assert images.role_image_reference("relay", base, "project-b", "deps") != relay
    assert images.role_image_reference("relay", base, "project-a", "other-deps") != relay
    assert images.role_image_reference("relay", "labenv/base:other", "project-a", "deps") != relay


def test_service_reference_ignores_project_hash():
    base = "labenv/base:0123456789ab"
    dns = images.role_image_reference("dns", base, "project-a", "deps")
    assert images.role_image_reference("dns", base, "project-b", "other-deps") == dns
    assert images.role_image_reference("spamd", base, "project-a", "deps") != dns


def test_base_reference_stable():
    first = images.base_image_reference()
    assert first.startswith("labenv/base:")
    assert images.base_image_reference() == first


def test_cache_dir_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LABENV_CACHE_DIR", str(tmp_path / "cache"))
    assert images.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("LABENV_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert images.cache_dir() == tmp_path / "xdg" / "labenv"


# Tests of the built images.


@pytest.mark.docker
def test_ensure_images_roles(references):
    assert set(references) == set(ROLES)
    for role, reference in references.items():
        assert reference.startswith(f"labenv/{role}:")


@pytest.mark.docker
def test_ensure_images_second_call_builds_nothing(client, references):
    ids = {role: client.images.get(ref).id for role, ref in references.items()}
    messages = []
    again = images.ensure_images(client, progress=messages.append)
    assert again == references
    assert messages == ["all lab images are up to date"]
    assert {role: client.images.get(ref).id for role, ref in again.items()} == ids


@pytest.mark.docker
def test_images_labels(client, references):
    base = client.images.get(images.base_image_reference())
    assert base.labels["io.labenv.role"] == "base"
    for role, reference in references.items():
        labels = client.images.get(reference).labels
        assert labels["io.labenv.role"] == role
        assert labels["io.labenv.version"] == __version__


@pytest.mark.docker
@pytest.mark.parametrize("role", ["relay", "final"])
def test_mailhost_labenv_version(client, references, role):
    output = run(client, references[role], "/opt/labenv/bin/labenv", "--version")
    assert __version__ in output


@pytest.mark.docker
def test_mailhost_has_no_host_only_deps(client, references):
    output = run(client, references["relay"], "/opt/labenv/bin/pip", "list", "--format=freeze")
    installed = {line.split("==")[0].lower() for line in output.split()}
    assert "aiosmtpd" in installed
    assert "labenv" in installed
    assert "docker" not in installed
    assert "fabric" not in installed


@pytest.mark.docker
def test_mailhost_sendmail_link(client, references):
    output = run(client, references["relay"], "readlink", "-f", "/usr/sbin/sendmail")
    assert output.strip() == "/opt/labenv/bin/labenv-sendmail"


@pytest.mark.docker
def test_mailhost_mail_without_exim(client, references):
    output = run(client, references["relay"], "dpkg-query", "-W", "-f", "${Package} ${Status}\\n", "bsd-mailx", "labenv-mta-dummy")
    assert "bsd-mailx install ok installed" in output
    assert "labenv-mta-dummy install ok installed" in output
    assert exit_status(client, references["relay"], "dpkg-query", "-W", "exim4-base") != 0
    assert exit_status(client, references["relay"], "test", "-e", "/usr/sbin/exim4") != 0
    assert exit_status(client, references["relay"], "test", "-x", "/usr/bin/mail") == 0


@pytest.mark.docker
@pytest.mark.parametrize(
    "role, program",
    [
        ("relay", "swaks"),
        ("relay", "telnet"),
        ("relay", "sshd"),
        ("relay", "rsyslogd"),
        ("final", "sshd"),
        ("syslog", "rsyslogd"),
        ("spamd", "spamd"),
        ("dns", "nsd"),
        ("dns", "dig"),
    ],
)
def test_role_program_present(client, references, role, program):
    output = run(client, references[role], "sh", "-c", f"command -v {program}")
    assert output.strip().endswith(f"/{program}")


@pytest.mark.docker
def test_base_has_no_ssh_host_keys(client, references):
    assert exit_status(client, references["relay"], "sh", "-c", "ls /etc/ssh/ssh_host_*") != 0


@pytest.mark.docker
def test_relay_final_share_dependency_layers(client, references):
    base_layers = client.images.get(images.base_image_reference()).attrs["RootFS"]["Layers"]
    relay = client.images.get(references["relay"]).attrs["RootFS"]["Layers"]
    final = client.images.get(references["final"]).attrs["RootFS"]["Layers"]
    assert relay[: len(base_layers)] == base_layers
    # The dependency COPY and RUN layers come from one build and are shared.
    shared = len(base_layers) + 2
    assert relay[:shared] == final[:shared]
    assert len(relay) == len(final)


@pytest.mark.docker
def test_tmp_mode_kept(client, references):
    for role in ("relay", "dns"):
        assert run(client, references[role], "stat", "-c", "%a", "/tmp").strip() == "1777"


@pytest.mark.docker
def test_project_layer_after_deps(client, references):
    steps = [entry["CreatedBy"] for entry in reversed(client.images.get(references["relay"]).history())]
    deps = next(i for i, step in enumerate(steps) if "--find-links /tmp/wheels/deps" in step)
    project = next(i for i, step in enumerate(steps) if "/tmp/labenv-wheel/*.whl" in step)
    assert deps < project


@pytest.mark.docker
@pytest.mark.parametrize(
    "role, command, message",
    [
        ("dns", ["mailman"], "unknown role 'mailman'"),
        ("spamd", None, "/etc/labenv/spamd.args is missing"),
    ],
)
def test_entrypoint_start_error(client, references, role, command, message):
    container = client.containers.run(references[role], command, network_mode="none", detach=True)
    try:
        assert container.wait(timeout=60)["StatusCode"] == 1
        assert message in container.logs().decode()
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_entrypoint_syslog_foreground(client, references):
    container = client.containers.run(references["syslog"], network_mode="none", detach=True)
    try:
        logs = wait_for_log(container, "exec rsyslogd -n")
        assert "no /etc/labenv/users.sh" in logs
        assert "starting rsyslogd" not in logs
        top = container.top(ps_args="-o pid,comm")
        assert [process[1] for process in top["Processes"]] == ["rsyslogd"]
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_entrypoint_runs_users_script(client, references):
    container = client.containers.create(references["syslog"], network_mode="none")
    try:
        put_file(container, "/etc/labenv/users.sh", "useradd -m -s /bin/bash john\n")
        container.start()
        wait_for_log(container, "exec rsyslogd -n")
        exit_code, output = container.exec_run(["id", "-un", "john"])
        assert exit_code == 0
        assert output.decode().strip() == "john"
        assert "creating lab users from /etc/labenv/users.sh" in container.logs().decode()
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_remove_superseded_keeps_listed(client, references):
    base = client.images.get(images.base_image_reference())
    stale = "labenv/base:superseded-test"
    base.tag("labenv/base", "superseded-test")
    try:
        others = {tag for image in client.images.list(filters={"label": "io.labenv.role"}) for tag in image.tags}
        keep = others - {stale}
        removed = images.remove_superseded_images(client, keep)
        assert removed == [stale]
        assert not images.image_exists(client, stale)
        assert images.image_exists(client, images.base_image_reference())
    finally:
        if images.image_exists(client, stale):
            client.images.remove(stale)
