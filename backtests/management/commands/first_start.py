"""``manage.py first_start``: the embedded default's first start (``make run`` calls it).

Creates a staff user with a one-time password when there is no user, and loads the demo content
when the SQLite database is empty (``backtests.demo``). Safe to run on every start: once there is
a user and content, it does nothing.
"""

from django.core.management.base import BaseCommand

from backtests import demo


class Command(BaseCommand):
    help = "First start of the embedded default: a staff user and demo content (idempotent)."

    def handle(self, *args, **options):
        outcome = demo.first_start(log=lambda line: self.stdout.write(f"  demo: {line}"))
        if outcome.staff_password is not None:
            banner = "=" * 72
            self.stdout.write(
                f"{banner}\n"
                f"Staff user created: {demo.STAFF_USERNAME}\n"
                f"One-time password:  {outcome.staff_password}\n"
                "It is shown only now. Log in at /accounts/login/ and change it in the admin.\n"
                f"{banner}"
            )
        self.stdout.write(f"First start: {outcome.reason}")
