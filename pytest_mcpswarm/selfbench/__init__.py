"""``mcpswarm selfbench``: measure our reference server against the official SDK's.

Roles, one per module:

* ``request``  — the one stateless ``tools/call`` both servers answer, and the reply check (pure);
* ``wsframe``  — client WebSocket frame encoding, masked per RFC 6455 (pure);
* ``cpu``      — which core runs what, and the machine facts a result is read with;
* ``peers``    — start, check and stop the two servers as pinned process groups;
* ``sdk_peer`` — the official SDK server, its configuration pinned in code;
* ``wrk``      — the wrk driver (Lua script, output parsing);
* ``httpdriver`` / ``wsdriver`` — our own Python clients, run as pinned subprocesses;
* ``runner``   — the sequence: start, validate, warm up, measure, stop;
* ``report``   — the table and the JSON file.
"""
