"""``mcpswarm selfbench``: measure our reference server against the official SDK's.

Roles, one per module:

* ``request``  — the one stateless ``tools/call`` both servers answer, and the reply check (pure);
* ``wsframe``  — client WebSocket frame encoding, masked per RFC 6455 (pure);
* ``cpu``      — which core runs what, background load, and the machine facts a result is read with;
* ``procs``    — process hygiene: children die with the harness, groups are killed whole;
* ``peers``    — start, validate and stop the two servers as pinned process groups;
* ``sdk_peer`` — the official SDK server, its configuration pinned in code;
* ``wrk``      — the wrk driver (Lua script, output parsing);
* ``driver``   — runs our Python drivers as pinned child processes;
* ``httpdriver`` / ``wsdriver`` — those Python clients (HTTP fallback, WebSocket);
* ``results``  — the figures records;  ``runner`` — the sequence;  ``report`` — table and JSON.
"""
