"""Walk-forward analysis (SPEC §13.3): the pure core, its models, services, jobs and actors."""
