"""gunicorn settings for Backfolio: ``gunicorn -c gunicorn.conf.py backfolio.wsgi``.

The master preloads the app, which warms the engines once (``backfolio.workers.prepare_to_fork``);
workers fork with that code already in memory. Threads do not survive a fork, so the embedded
Dramatiq workers start in ``post_fork``, in each worker, never in the master. Command-line flags
override the values here.
"""

import os

GUNICORN_ROLE_ENV = "BACKFOLIO_GUNICORN_ROLE"  # read by backfolio/wsgi.py

preload_app = True
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 120
graceful_timeout = 10

# Loading this file happens in the master, before the app is preloaded.
os.environ[GUNICORN_ROLE_ENV] = "master"


def post_fork(server, worker):
    os.environ[GUNICORN_ROLE_ENV] = "worker"
    if server.cfg.preload_app:
        from backfolio.workers import after_fork

        after_fork()
    # Without preload the worker imports backfolio.wsgi next, which warms and starts them.
