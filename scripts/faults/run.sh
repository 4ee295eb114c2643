#!/usr/bin/env bash
# Run every fault and fuzz test against PostgreSQL + Redis (the worker, broker and database
# faults skip without them). Usage: scripts/faults/run.sh [pytest args]
# DATABASE_URL / REDIS_URL default to the local services; the test database is test_<name>.
set -euo pipefail
cd "$(dirname "$0")/../.."
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/var/numba-cache}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/reliability}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export BACKFOLIO_REQUIRE_SERVICE_TESTS=1  # a fault test that skips here is a failure
exec .venv/bin/pytest tests/reliability -q -rxX "$@"
