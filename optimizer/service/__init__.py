"""apo as a service: an HTTP job API (``apo serve``), its SQLite job table, the worker processes that run
jobs, and a Python client (:class:`~optimizer.service.client.ApoClient`).

Modules: ``app`` (FastAPI routes), ``server`` (uvicorn), ``store`` (job table), ``submit`` (checking a job
request), ``scheduler`` (starting, cancelling and reaping workers; recovery after a restart), ``worker`` (one
job in its own process), ``journal`` (a run's progress and event lines), ``auth`` (the token), ``limits``
(request size), ``client`` (``ApoClient``). The FastAPI and uvicorn parts are imported only by ``apo serve``.
"""
