"""The Puddle domain, shared by the client and the emulator: no I/O, no gRPC calls.

- :mod:`~airflow_puddle.domain.statuses`: the status tables (code and text of every state).
- :mod:`~airflow_puddle.domain.lifecycle`: the transitions, the stable and terminal sets,
  the wait targets, which states move toward which goal, and the verdict of one observation.
- :mod:`~airflow_puddle.domain.validation`: every input rule, raising
  :class:`~airflow_puddle.domain.errors.ValidationFailedError` naming the field and the rule.
- :mod:`~airflow_puddle.domain.errors`: the error hierarchy, each error with the gRPC status
  code it travels as, and the one mapping of a failed RPC back to it.
- :mod:`~airflow_puddle.domain.defaults`: the documented defaults (disk, idle timeout, poll, wait).
- :mod:`~airflow_puddle.domain.clouds`, :mod:`~airflow_puddle.domain.products`: the constants.
- :mod:`~airflow_puddle.domain.wire`: names both ends of the wire agree on.
"""
