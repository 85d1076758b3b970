"""Docker object names and labels of a lab, in one place.

`labenv down` and `labenv status` find a lab's objects by these labels only,
so every object the runtime creates gets them.
"""

from __future__ import annotations

from labenv import __version__

LABEL_LAB = "io.labenv.lab"
LABEL_HOST = "io.labenv.host"
LABEL_VERSION = "io.labenv.version"
# Extra labels that let the runtime rebuild a running lab's model and show
# its status without the lab file that started it.
LABEL_ROLE = "io.labenv.role"
LABEL_FQDN = "io.labenv.fqdn"
LABEL_DOMAIN = "io.labenv.domain"
LABEL_LAB_FILE = "io.labenv.lab-file"
LABEL_OVERRIDES = "io.labenv.overrides"


def network_name(lab_name: str) -> str:
    return f"labenv-{lab_name}"


def container_name(lab_name: str, host_name: str) -> str:
    return f"labenv-{lab_name}-{host_name}"


def volume_name(lab_name: str, host_name: str, purpose: str) -> str:
    return f"labenv-{lab_name}-{host_name}-{purpose}"


def lab_labels(lab_name: str, host_name: str | None = None) -> dict[str, str]:
    """Return the labels every object of ``lab_name`` carries, plus the host label when given."""
    labels = {LABEL_LAB: lab_name, LABEL_VERSION: __version__}
    if host_name is not None:
        labels[LABEL_HOST] = host_name
    return labels


def lab_filter(lab_name: str | None) -> dict[str, list[str]]:
    """Return a Docker list filter matching the objects of one lab, or of every lab when None."""
    if lab_name is None:
        return {"label": [LABEL_LAB]}
    return {"label": [f"{LABEL_LAB}={lab_name}"]}


def lab_command(command: str, lab_name: str) -> str:
    """Return the labenv command line for ``lab_name``, with --name only for a lab other than the default one."""
    from labenv.lab.defaults import DEFAULT_LAB_NAME

    if lab_name == DEFAULT_LAB_NAME:
        return f"labenv {command}"
    return f"labenv {command} --name {lab_name}"
