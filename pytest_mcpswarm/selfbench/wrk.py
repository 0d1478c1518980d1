"""The wrk driver: every server gets the same Lua-scripted POST from one pinned wrk thread."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from pytest_mcpswarm.errors import WrkError
from pytest_mcpswarm.selfbench.procs import die_with_parent
from pytest_mcpswarm.selfbench.request import ToolCall
from pytest_mcpswarm.selfbench.results import HttpFigures

NOT_FOUND = "wrk not found: apt-get install wrk"
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def available() -> bool:
    return shutil.which("wrk") is not None


def lua_script(call: ToolCall) -> str:
    """Method, headers and body; no response() hook, which would slow wrk down for every reply."""
    body = call.body().decode()
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body}]==]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in call.http_headers().items()]
    return "\n".join(lines) + "\n"


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def parse(output: str) -> tuple[int, float, float, float | None, float | None, int]:
    """(requests, seconds, req/s, p50 ms, p99 ms, errors) from ``wrk --latency`` output."""
    done = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if done is None or rps is None:
        raise WrkError(f"could not read wrk's output: {output.strip()[-200:]!r}")
    pct = {m[1]: _ms(m[2], m[3]) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m|h)", output, re.M)}
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors += int(non2xx[1]) if non2xx else 0
    seconds = _ms(done[2], done[3]) / 1e3
    return int(done[1]), seconds, float(rps[1]), pct.get("50"), pct.get("99"), errors


def run(
    *,
    server: str,
    url: str,
    call: ToolCall,
    prefix: list[str],
    threads: int,
    connections: int,
    duration: float,
) -> HttpFigures:
    with tempfile.TemporaryDirectory(prefix="mcpswarm-wrk-") as tmp:
        script = Path(tmp, "tools_call.lua")
        script.write_text(lua_script(call))
        seconds = max(1, round(duration))
        command = [
            *prefix,
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=seconds + 30,
                check=False,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except subprocess.TimeoutExpired:
            raise WrkError(f"wrk did not finish within {seconds + 30} s against {url}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise WrkError(f"wrk exited with status {done.returncode}: {said[-1] if said else 'no output'}")
    requests, secs, rps, p50, p99, errors = parse(done.stdout)
    shown = shlex.join([*command[:-3], "tools_call.lua", url])
    return HttpFigures(server, "wrk", requests, secs, rps, p50, p99, errors, shown)
