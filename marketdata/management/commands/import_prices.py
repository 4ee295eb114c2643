from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from marketdata.services import price_series_import


class Command(BaseCommand):
    help = (
        "Import a daily price series from a CSV or Parquet file (columns date, open, high, low, "
        "close, and optionally adj_close, volume). Every row is validated first; a bad file "
        "imports nothing and the error names the row."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to a .csv or .parquet file")
        parser.add_argument("--symbol", required=True, help="symbol to store the series under")
        parser.add_argument("--description", default="", help="a short description")

    def handle(self, *args, file, symbol, description, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            series = price_series_import(
                symbol=symbol,
                file=path.read_bytes(),
                filename=path.name,
                user=None,
                description=description,
            )
        except ValidationError as error:
            problems = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
            )
            raise CommandError(f"Nothing imported. {problems}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {series.symbol}: {series.rows} rows, "
                f"{series.first_date} – {series.last_date}"
            )
        )
