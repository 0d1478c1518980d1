"""The Docker Swarm stack: images, swarm init, deploy and teardown, and the container entrypoints.

- ``labels``: the ``mcpswarm.*`` labels on every resource, and who owns a stack;
- ``engine``: reaching dockerd, ``swarm init`` (idempotent), node labels, join tokens;
- ``images``: building every image the stack needs, upstream or offline;
- ``stack``: ``docker stack deploy``, waiting for convergence, status, removal, scaling, the sweep
  and orphan reaping by label;
- ``credentials``: Grafana's admin password as a labelled Docker secret;
- ``reaper``: removes a stack whose owner process died without tearing it down;
- ``server_entry``, ``client_entry``, ``controller_entry``, ``healthcheck``: what runs
  inside the containers.

The docker SDK is imported lazily so ``mcpswarm serve`` inside a container never needs it.
"""
