"""``manage.py create_api_user USERNAME --email E --password P``: staff create API users.

The results API has no sign-up; an administrator creates each account here (or in the admin).
Accounts made here are plain users: they see their own records and ownerless ones, never others'.
"""

import getpass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction


class Command(BaseCommand):
    help = "Create a (non-staff) user who can log in to the API with a username or email."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", required=True)
        parser.add_argument(
            "--password",
            help="The password; asked for interactively when omitted (keeps it out of history).",
        )

    def handle(self, *args, username, email, password=None, **options):
        User = get_user_model()
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"--email: {email!r} is not a valid email address") from exc
        if User.objects.filter(username__iexact=username).exists():
            raise CommandError(f"A user named {username!r} already exists")
        if User.objects.filter(email__iexact=email).exists():
            # Login accepts an email, so two accounts must never share one.
            raise CommandError(f"A user with email {email!r} already exists")

        if password is None:
            password = self._ask_password()
        candidate = User(username=username, email=email)
        try:
            validate_password(password, user=candidate)
        except ValidationError as exc:
            raise CommandError("Password rejected: " + " ".join(exc.messages)) from exc

        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password)
        self.stdout.write(self.style.SUCCESS(f"Created API user {user.username} (id {user.pk})"))

    def _ask_password(self) -> str:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The passwords do not match")
        return password
