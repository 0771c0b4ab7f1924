"""A real deployment of the provider, and the scenarios that prove it (``make reliability``).

``procs`` starts and stops every process by pid, ``postgres`` runs a throw-away cluster,
``emulator`` runs the Puddle emulator as a process that can be killed and restarted,
``airflow`` runs Airflow's components and talks to them over REST; the end-to-end tests
under ``tests/e2e`` use the same modules. ``scenarios`` and ``__main__`` make the report.
"""
