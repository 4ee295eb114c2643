from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    name = "marketdata"
    verbose_name = "Market data"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from marketdata.models import PriceSeries
        from marketdata.store import get_store
        from marketdata.uploaded import SOURCE_NAME, UploadedSource

        uploaded = UploadedSource()
        # Registered after the bundled source, which therefore wins for a symbol both hold.
        get_store().register_source(SOURCE_NAME, uploaded)

        def forget(**kwargs):
            uploaded.forget_version()

        post_save.connect(forget, sender=PriceSeries, weak=False, dispatch_uid="uploaded-save")
        post_delete.connect(forget, sender=PriceSeries, weak=False, dispatch_uid="uploaded-del")
