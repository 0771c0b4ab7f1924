"""What code that builds our clients over another backend may use of the client's internals.

The hook's adapter (:mod:`airflow_puddle.hooks.adapter`) runs our clients over H2O's
``puddle.client``: it overrides the ops that reach Puddle, and each override yields a
:class:`Call` step instead of an :class:`Rpc`. This module names that contract, so no code
outside the client imports its private modules (``tests/test_layers.py`` checks it):

- :data:`Op`, :class:`Call`, :class:`Rpc`: what an op is and the steps it yields;
- :data:`BLOCKING_CALLS`: the small pool the async driver runs :class:`Call` steps in
  (also for other blocking work a trigger must keep off the event loop);
- :class:`CreateArgs`: a create's checked arguments, what ``_create`` receives.
"""

from __future__ import annotations

from airflow_puddle.client._drivers import BLOCKING_CALLS, Call, Op
from airflow_puddle.client._ops import CreateArgs
from airflow_puddle.client._transport import Rpc

__all__ = ["BLOCKING_CALLS", "Call", "CreateArgs", "Op", "Rpc"]
