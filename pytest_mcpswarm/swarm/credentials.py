"""Grafana's admin password as a Docker secret: random, labelled, never in a file or the stack.

The stack file declares the secret ``external`` (``<stack>_grafana-admin-password``) and Grafana
reads it through ``GF_SECURITY_ADMIN_PASSWORD__FILE``; so ``docker stack config`` and
``docker service inspect`` show only the secret's name.  ``ensure`` creates it before
``docker stack deploy`` from 24 random bytes (or the first line of the file named by
``MCPSWARM_GRAFANA_PASSWORD_FILE``), labelled like every other resource of the stack, so
``stack.remove`` and the sweeps delete it with the stack.  A redeploy of the same stack keeps
the existing secret (secrets are immutable, and Grafana keeps the password in its database).

Who gets the password: ``mcpswarm swarm deploy`` writes a new one to a 0600 file
(``.<stack>.grafana-password``, ``--grafana-password-file``); the pytest backend writes
nothing, and ``read_command`` prints how to read it from the running Grafana task.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pytest_mcpswarm.errors import DeployError
from pytest_mcpswarm.swarm import labels as L

#: The secret's key in the stack file, and the file name Grafana reads under /run/secrets.
GRAFANA_SECRET: Final = "grafana-admin-password"
GRAFANA_TARGET: Final = "grafana_admin_password"
PASSWORD_FILE_VAR: Final = "MCPSWARM_GRAFANA_PASSWORD_FILE"


def secret_name(stack: str) -> str:
    return f"{stack}_{GRAFANA_SECRET}"


@dataclass(frozen=True)
class GrafanaSecret:
    name: str
    #: The password when this call created the secret; None when an existing one was kept.
    created_password: str | None


def _chosen_password() -> str | None:
    path = os.environ.get(PASSWORD_FILE_VAR)
    if not path:
        return None
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise DeployError(
            f"{PASSWORD_FILE_VAR}={path} cannot be read: {exc}",
            fix=f"point {PASSWORD_FILE_VAR} at a readable file, or unset it",
        ) from None
    password = lines[0].strip() if lines else ""
    if not password:
        raise DeployError(
            f"{PASSWORD_FILE_VAR}={path} is empty", fix="write the password on its first line, or unset it"
        )
    return password


def ensure(client: Any, stack: L.StackLabels) -> GrafanaSecret:
    """The stack's Grafana secret: kept if it exists, else created (random unless chosen)."""
    name = secret_name(stack.stack)
    existing = client.secrets.list(filters={"name": name})
    if any(s.name == name for s in existing):
        return GrafanaSecret(name, None)
    password = _chosen_password() or secrets.token_urlsafe(24)
    env = stack.env()
    labels = {L.STACK: stack.stack, L.OWNER: env["MCPSWARM_OWNER"], L.KEEP: env["MCPSWARM_KEEP"]}
    client.secrets.create(name=name, data=password.encode(), labels=labels)
    return GrafanaSecret(name, password)


def write_password(path: Path, password: str) -> None:
    """``password`` into ``path``, created 0600 (never wider), as the join tokens are."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, f"{password}\n".encode())
    finally:
        os.close(fd)


def read_command(stack: str) -> str:
    """A shell command that prints the password from the running Grafana task (on its node)."""
    return (
        f"docker exec $(docker ps -q -f label=com.docker.swarm.service.name={stack}_grafana) "
        f"cat /run/secrets/{GRAFANA_TARGET}"
    )
