from django.core.management.base import BaseCommand

from marketdata.selectors import symbol_list


class Command(BaseCommand):
    help = (
        "Load and verify the bundled daily price history (and any imported series) into the "
        "process cache, and list each symbol's coverage."
    )

    def handle(self, *args, **options):
        symbols = symbol_list()
        for coverage in symbols:
            self.stdout.write(
                f"{coverage.symbol:<8} {coverage.first_date} – {coverage.last_date} "
                f"{coverage.rows:>6} rows ({coverage.source})",
                ending="\n",
            )
        self.stdout.write(self.style.SUCCESS(f"{len(symbols)} symbols available"))
