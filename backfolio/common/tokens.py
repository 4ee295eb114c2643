"""JWT lifetimes beyond expiry: a refresh token is spent once, a password change ends them all.

simplejwt does the checks (``SIMPLE_JWT``: rotation, blacklist, ``CHECK_REVOKE_TOKEN``); this
module spends refresh tokens atomically and blacklists a user's outstanding refresh tokens when
their password changes.
"""

from django.contrib.auth import get_user_model
from django.db.models.signals import pre_save
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password


def refresh_token_spend(refresh: RefreshToken) -> bool:
    """Blacklist ``refresh``; False when it already was (two uses of one token, even
    concurrent ones: the blacklist row is unique per token, so only one use creates it)."""
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=refresh[api_settings.JTI_CLAIM],
        defaults={
            "token": str(refresh),
            "expires_at": datetime_from_epoch(refresh["exp"]),
        },
    )
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    return created


def token_matches_password(token, user) -> bool:
    """Whether ``token`` was issued for ``user``'s current password."""
    return token.get(api_settings.REVOKE_TOKEN_CLAIM) == get_md5_hash_password(user.password)


def user_tokens_end(user) -> None:
    """Blacklist every refresh token ``user`` still holds."""
    pending = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in pending], ignore_conflicts=True
    )


def _end_tokens_on_password_change(sender, instance, update_fields=None, raw=False, **kwargs):
    if raw or instance.pk is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return  # e.g. the last_login update of every login: no extra query
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and stored != instance.password:
        user_tokens_end(instance)


def connect_signals() -> None:
    pre_save.connect(
        _end_tokens_on_password_change,
        sender=get_user_model(),
        dispatch_uid="backfolio-end-tokens-on-password-change",
    )
