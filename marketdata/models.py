from django.conf import settings
from django.db import models

from backfolio.common.models import TimeStampedModel


class PriceSeries(TimeStampedModel):
    """A user-imported daily OHLCV series, kept whole as Parquet bytes.

    The database is shared by the web and every worker machine, so keeping the series here makes
    an import visible everywhere at once. Bundled symbols live in ``marketdata/data/`` and cannot be
    replaced by an import: the bundled source is consulted first.
    """

    symbol = models.CharField(max_length=40, unique=True)
    description = models.CharField(max_length=200, blank=True, default="")
    first_date = models.DateField()
    last_date = models.DateField()
    rows = models.PositiveIntegerField()
    data = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["symbol"]
        verbose_name_plural = "price series"

    def __str__(self) -> str:
        return f"{self.symbol} ({self.first_date} – {self.last_date})"
