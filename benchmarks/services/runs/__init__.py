"""A run's life, one module per step; each step is a service that one Celery task (``tasks.py``) calls.

    start.run_start ───────────► QUEUED ──── start.run_cancel ─────────────────────► PARTIAL
      (view, API, schedule)        │ on commit: task coordinate_run                       ▲
                                   ▼                                                      │
    coordinate.run_coordinate ─► RUNNING ─── start.run_cancel ──► CANCELLING ───────────┤
      claims the row, makes N        │ task supervise_run   +   N × task run_shard        │
      shards, enqueues their tasks   ▼                                                    │
    shard.shard_execute            each shard: QUEUED → RUNNING → FINISHED | FAILED |     │
      (queue "load", or the chosen   CANCELLED; records → Postgres, deltas → live.bus     │
      worker's own queue)                                                                 │
    supervise.run_supervise        merges deltas into RunSecond rows, pushes them to the  │
      (the run's one aggregator)     page, reaps its silent shards; no shard left active: │
    finalize.run_finalize ───────► FINISHED | PARTIAL | FAILED ───────────────────────────┘
      exact summary from every record, the comparison sample, an honest reason

    reap.runs_reap_stale (task reap_stale_runs, beat): shards silent or never started → DEAD; a run
      whose supervisor went quiet gets a new one; a run no worker picked up → FAILED.

Every transition is a claim (``filter(pk=…, status=old).update(status=new)``): the row count decides
who proceeds, so two workers never run the same step, and load never runs twice.
"""
