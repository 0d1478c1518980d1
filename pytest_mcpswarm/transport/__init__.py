"""Client transports, chosen by the target URL's scheme.

``open_transport`` is the one place that maps a URL to a transport class;
the WebSocket and HTTP transports are imported only when asked for, so a
stdio or tcp benchmark does not pay for picows or the HTTP stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from pytest_mcpswarm.errors import TargetError
from pytest_mcpswarm.transport.base import ClientTransport, MessageSink, SendMeta
from pytest_mcpswarm.transport.stdio import StderrMode, StdioTransport
from pytest_mcpswarm.transport.tcp import TcpTransport

__all__ = ["ClientTransport", "MessageSink", "SendMeta", "StdioTransport", "TcpTransport", "open_transport"]


def open_transport(
    url: str,
    *,
    ws_newline: bool = False,
    headers: Mapping[str, str] | None = None,
    stdio_stderr: StderrMode = "inherit",
) -> ClientTransport:
    """A not-yet-connected transport for ``url``.

    ``ws://``/``wss://`` -> WebSocketTransport (``ws_newline``: erlmcp line framing),
    ``http://``/``https://`` -> Streamable HTTP, ``tcp://HOST:PORT`` -> newline-delimited
    TCP, ``stdio:COMMAND`` -> a child process.  ``headers`` go on the HTTP upgrade or
    requests and are refused for stdio and tcp, which have nowhere to put them.
    """
    if url.startswith("stdio:"):
        command = url.removeprefix("stdio:").strip()
        if not command:
            raise TargetError(f"target {url!r} names no command after 'stdio:'")
        _no_headers(url, headers)
        try:
            return StdioTransport(command, stderr=stdio_stderr)
        except ValueError as exc:  # shlex: unbalanced quotes
            raise TargetError(f"target {url!r}: cannot split the command ({exc})") from None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        raise TargetError(f"target {url!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss", "http", "https", "tcp"):
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        raise TargetError(f"target {url!r} has {shown}, which no transport serves")
    if not parts.hostname:
        raise TargetError(f"target {url!r} has no host")
    if scheme == "tcp":
        if port is None:
            raise TargetError(f"target {url!r} needs a port: tcp://HOST:PORT")
        if parts.path not in ("", "/") or parts.query:
            raise TargetError(f"target {url!r}: a tcp target has no path or query")
        _no_headers(url, headers)
        return TcpTransport(parts.hostname, port)
    if scheme in ("ws", "wss"):
        from pytest_mcpswarm.transport.ws import WebSocketTransport

        return WebSocketTransport(url, newline=ws_newline, headers=headers)
    from pytest_mcpswarm.transport.http import HttpTransport

    return HttpTransport(url, headers=headers)


def _no_headers(url: str, headers: Mapping[str, str] | None) -> None:
    if headers:
        raise TargetError(
            f"target {url!r} cannot carry HTTP headers ({', '.join(headers)})",
            fix="pass headers only with ws://, wss://, http:// or https:// targets",
        )
