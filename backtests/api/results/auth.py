"""``POST /api/auth/login`` and ``POST /api/auth/refresh-token``: JWT Bearer tokens.

Tokens come from djangorestframework-simplejwt (access 15 minutes, refresh 7 days, see
``SIMPLE_JWT``), so every API that lists ``JWTAuthentication`` accepts them. A refresh token
works once, and a password change ends every token issued before it (``backfolio.common.tokens``).
Users are created by staff (admin or ``manage.py create_api_user``); there is no sign-up.
"""

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, user_logged_in
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from backfolio.common.tokens import refresh_token_spend, token_matches_password

from .exceptions import ResultsApiError, ResultsApiMixin, invalid_credentials
from .serializers import (
    ErrorSchema,
    LoginSerializer,
    RefreshTokenSerializer,
    TokenPairSchema,
)

User = get_user_model()


def token_pair(user) -> dict:
    refresh = RefreshToken.for_user(user)
    return {
        "accessToken": str(refresh.access_token),
        "refreshToken": str(refresh),
        "expiresIn": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    }


def _username_for(*, username: str | None, email: str | None) -> str:
    """The username to authenticate: the one given, or the one owning ``email``."""
    if username:
        return username
    # An email shared by several accounts identifies none of them.
    matches = list(
        User.objects.filter(email__iexact=email).values_list(User.USERNAME_FIELD, flat=True)[:2]
    )
    return matches[0] if len(matches) == 1 else ""


class _AuthView(ResultsApiMixin, APIView):
    authentication_classes = []  # a stale or forged token must not block getting a new one
    permission_classes = [AllowAny]
    throttle_classes = []


class LoginView(_AuthView):
    @extend_schema(
        operation_id="auth_login",
        tags=["results API: auth"],
        summary="Log in with email or username and password",
        description=(
            "Returns a Bearer access token (15 minutes) and a refresh token (7 days). "
            "After `AXES_FAILURE_LIMIT` failures for one username from one client address "
            "(10 by default), that pair is refused with 429 until the cool-off has passed "
            "(15 minutes), even with the right password; a success clears the count."
        ),
        request=LoginSerializer,
        responses={
            200: TokenPairSchema,
            400: OpenApiResponse(ErrorSchema, description="VALIDATION_ERROR"),
            401: OpenApiResponse(ErrorSchema, description="Invalid credentials"),
            429: OpenApiResponse(ErrorSchema, description="RATE_LIMITED"),
        },
        auth=[],
    )
    def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = _username_for(
            username=serializer.validated_data.get("username"),
            email=serializer.validated_data.get("email"),
        )
        # Unknown address or not: authenticate runs the password hasher either way, so how long
        # a login takes does not tell whether an account exists.
        user = authenticate(
            request, username=username, password=serializer.validated_data["password"]
        )
        if user is None and getattr(request, "axes_locked_out", False):
            raise ResultsApiError(
                status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                message=(
                    "Too many failed login attempts; try again in "
                    f"{int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)} minutes"
                ),
            )
        if user is None:
            raise invalid_credentials()
        # A token login is a login: last_login is updated and the lockout count cleared.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        return Response(token_pair(user))


class RefreshTokenView(_AuthView):
    @extend_schema(
        operation_id="auth_refresh_token",
        tags=["results API: auth"],
        summary="Exchange a refresh token for new tokens",
        description=(
            "Returns a new access token and a new refresh token. A refresh token works once, "
            "and not at all after its user's password changed."
        ),
        request=RefreshTokenSerializer,
        responses={
            200: TokenPairSchema,
            400: OpenApiResponse(ErrorSchema, description="VALIDATION_ERROR"),
            401: OpenApiResponse(ErrorSchema, description="Invalid or expired refresh token"),
        },
        auth=[],
    )
    def post(self, request):
        serializer = RefreshTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            refresh = RefreshToken(serializer.validated_data["refreshToken"])
        except TokenError as exc:
            raise _invalid_refresh_token() from exc
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        user = User.objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
        if user is None or not user.is_active or not token_matches_password(refresh, user):
            raise _invalid_refresh_token()
        if not refresh_token_spend(refresh):
            raise _invalid_refresh_token()
        return Response(token_pair(user))


def _invalid_refresh_token() -> ResultsApiError:
    return ResultsApiError(
        status_code=status.HTTP_401_UNAUTHORIZED, message="Invalid or expired refresh token"
    )
