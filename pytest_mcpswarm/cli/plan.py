"""``mcpswarm plan``: client replicas and CPU for a total rate, from measured per-core throughput."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from pytest_mcpswarm.capacity.sizing import CALIBRATION_PATH, Calibration, override_document, plan_swarm
from pytest_mcpswarm.errors import UsageError
from pytest_mcpswarm.load.profiles import BUILTIN_PROFILES, get_profile, load_profiles

DEFAULT_COMPOSE = Path("docker") / "docker-compose.swarm.yml"


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "plan",
        help="size the swarm's client replicas for a total rate",
        description="Divide a total rate by the measured per-core throughput of this machine's generator "
        "(a short calibration against the reference server, or a saved one) at a CPU headroom, and say how "
        "many client replicas and what CPU reservations the stack needs. Optionally write them into a "
        "compose override file.",
    )
    p.add_argument("--total-rate", type=float, required=True, help="req/s the whole swarm must offer")
    p.add_argument("--profile", default="message-bomber", help=f"{', '.join(BUILTIN_PROFILES)} or a user one")
    p.add_argument("--profiles-file", help="TOML or YAML file with [profiles.NAME] tables")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--calibrate", action="store_true", help=f"measure now and save to {CALIBRATION_PATH}"
    )
    source.add_argument(
        "--calibration", metavar="FILE", help=f"a saved calibration (default: {CALIBRATION_PATH})"
    )
    p.add_argument("--calibration-seconds", type=float, default=3.0, help="calibration run length (3)")
    p.add_argument(
        "--calibration-rate", type=float, default=20000.0, help="offered req/s while calibrating (20000)"
    )
    p.add_argument(
        "--calibration-rounds",
        type=int,
        default=3,
        help="raise the rate toward --headroom CPU in up to this many runs (3)",
    )
    p.add_argument("--headroom", type=float, default=0.7, help="target CPU share per replica (0.7)")
    p.add_argument("--cores-per-node", type=float, help="also say how many client nodes that is")
    p.add_argument("--write-override", metavar="FILE", help="write a compose override with the replicas")
    p.add_argument("--compose", default=str(DEFAULT_COMPOSE), help=f"the base stack file ({DEFAULT_COMPOSE})")
    p.set_defaults(func=run)


def _service_exists(compose: Path, name: str) -> bool:
    try:
        data = yaml.safe_load(compose.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read the stack file {compose}: {exc}") from None
    return isinstance(data, dict) and name in (data.get("services") or {})


def run(args: argparse.Namespace) -> int:
    user = load_profiles(args.profiles_file) if args.profiles_file else None
    profile = get_profile(args.profile, user)
    if args.calibrate:
        if not (args.calibration_seconds > 0 and args.calibration_rate > 0):
            raise UsageError("--calibration-seconds and --calibration-rate must be > 0")
        from pytest_mcpswarm.capacity.calibrate import calibrate

        if args.calibration_rounds < 1:
            raise UsageError(f"--calibration-rounds must be >= 1, got {args.calibration_rounds}")
        cal = calibrate(
            profile,
            rate=args.calibration_rate,
            seconds=args.calibration_seconds,
            rounds=args.calibration_rounds,
            target_cpu=args.headroom,
        )
        print(f"calibration saved: {cal.save(CALIBRATION_PATH)}")
    else:
        cal = Calibration.load(args.calibration or CALIBRATION_PATH)
    if cal.profile != profile.name:
        print(f"note: the calibration measured profile {cal.profile!r}, planning {profile.name!r}")
    print(
        f"calibration: {cal.per_core_rps:,.0f} req/s per generator core ({cal.answered:,} answered in "
        f"{cal.seconds:g} s using {cal.cpu_s:.2f} CPU-s, {cal.cpu_fraction:.0%} of a core) on "
        f"{cal.machine.get('node', '?')} ({cal.machine.get('cpu_count', '?')} CPUs, "
        f"Python {cal.machine.get('python', '?')})"
    )
    plan = plan_swarm(
        profile, args.total_rate, cal.per_core_rps, headroom=args.headroom, cores_per_node=args.cores_per_node
    )
    for line in plan.lines():
        print(line)
    if args.write_override:
        service = f"mcp-client-{plan.profile}"
        doc = override_document(plan, service_exists=_service_exists(Path(args.compose), service))
        out = Path(args.write_override)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            f"# mcpswarm plan --total-rate {args.total_rate:g} --profile {plan.profile}\n"
            f"# use: docker stack deploy -c {args.compose} -c {out} NAME\n"
            + yaml.safe_dump(doc, sort_keys=False),
            encoding="utf-8",
        )
        print(f"override written: {out} ({service}: {plan.replicas} replicas)")
    return 0
