"""The live path of a running run: each shard publishes per-second stats deltas on the bus (``bus.py``,
Redis or in-process); the run's supervisor (``services/runs/supervise.py``) merges them and pushes
updates to the run's websocket group (``push.py``); ``consumers.py`` serves that group to the run page,
routed by ``routing.py``."""
