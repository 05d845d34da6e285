"""The specification's examples, served by the stack (``CELERY_DURABLE_IMPORTS=worker.examples``).

- :mod:`worker.examples.payment`: payment with compensation (``resilient_workflow``);
- :mod:`worker.examples.flaky_api`: a flaky API retried with backoff
  (``fetch_with_backoff``, step ``robust_api_call``);
- :mod:`worker.examples.fulfilment`: order fulfilment in focused steps (``fulfil_order``).

Workflow and step names are the functions' ``__qualname__``, shared by every module a
worker imports: keep function names unique across these modules.
"""

from worker.examples import flaky_api, fulfilment, payment

__all__ = ["flaky_api", "fulfilment", "payment"]
