from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "backfolio.common"
    label = "common"
    verbose_name = "Backfolio common"

    def ready(self) -> None:
        from backfolio.common import tokens

        tokens.connect_signals()
