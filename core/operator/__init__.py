"""The Phoenix operator (``phoenix operator``): reconciles the two custom resources.

- ``PhoenixProcessPipeline`` → a ConfigMap (``collector.yaml`` = ``spec.config``) and a
  DaemonSet of the collector, both owned by the resource; the DaemonSet's status becomes
  the resource's status (phase, readyNodes, totalNodes, conditions).
- ``LoadSimulationJob`` → one ``batch/v1`` Job per selected Node running
  ``phoenix loadsim run``; the Jobs' statuses become the resource's status.

Modules: ``desired`` and ``status`` are pure (objects in, objects out: unit-tested with
recorded API objects); ``cluster`` is the small port to the API server with its real
adapter (kubernetes client); ``reconcile`` holds the steps over that port; ``handlers``
wires them to kopf; ``runner`` starts kopf with Phoenix's settings.
"""
