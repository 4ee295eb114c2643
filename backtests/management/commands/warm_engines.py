import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Compile the engines' code into the on-disk cache so the first backtest is fast."

    def handle(self, *args, **options):
        from backtests.engines.warmup import warm_engines

        started = time.perf_counter()
        warm_engines()
        self.stdout.write(f"Engines warm in {time.perf_counter() - started:.1f} s")
