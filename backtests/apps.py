from django.apps import AppConfig


class BacktestsConfig(AppConfig):
    name = "backtests"
    verbose_name = "Backtests"

    def ready(self) -> None:
        # Every actor registered on the broker in every process: the jobs send messages by actor
        # name (``backtests.jobs.messages``) and never import the actors.
        import backtests.research.tasks
        import backtests.research.walk_forward.tasks
        import backtests.tasks  # noqa: F401
