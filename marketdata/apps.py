from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    name = "marketdata"
    verbose_name = "Market data"

    def ready(self):
        from marketdata.store import get_store
        from marketdata.uploaded import SOURCE_NAME, UploadedSource

        # Registered after the bundled source, which therefore wins for a symbol both hold.
        get_store().register_source(SOURCE_NAME, UploadedSource())
