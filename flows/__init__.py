"""Prefect flows, the ``netae`` command line, settings and orchestration glue."""
