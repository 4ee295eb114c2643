from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "backfolio.common"
    label = "common"
    verbose_name = "Backfolio common"
