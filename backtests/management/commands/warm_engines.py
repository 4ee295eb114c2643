import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run both engines once on synthetic data: imports them, fills the numba on-disk cache "
        "and checks they work, so a fresh install's first backtest is fast."
    )

    def handle(self, *args, **options):
        from backtests.engines.warmup import warm_engines

        started = time.perf_counter()
        warm_engines()
        self.stdout.write(f"Engines warm in {time.perf_counter() - started:.1f} s")
