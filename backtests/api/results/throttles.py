"""Rate limits of the results API: failed logins per IP and username, creates per user."""

import hashlib

from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class FailedLoginThrottle(SimpleRateThrottle):
    """Counts only *failed* logins, per client IP and username, at the ``login`` rate.

    A user who types the password right is never slowed down; someone guessing one account's
    password from one address is stopped after the rate's number of misses. A success clears
    the count for that address and username.
    """

    scope = "login"

    def __init__(self, username: str):
        super().__init__()
        self.username = (username or "").strip().lower()

    def get_cache_key(self, request, view=None):
        # Hashed so that any username is a safe cache key for every cache backend.
        who = hashlib.sha256(f"{self.get_ident(request)}\0{self.username}".encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": who}

    def allow_request(self, request, view=None) -> bool:
        self.key = self.get_cache_key(request, view)
        self.now = self.timer()
        self.history = [
            moment for moment in self.cache.get(self.key, []) if moment > self.now - self.duration
        ]
        return len(self.history) < self.num_requests

    def record_failure(self) -> None:
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)

    def reset(self) -> None:
        self.cache.delete(self.key)


class BacktestCreateThrottle(UserRateThrottle):
    """``POST /api/backtests``: the ``results_create`` rate (10 per minute) per user."""

    scope = "results_create"
