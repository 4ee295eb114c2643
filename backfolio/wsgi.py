import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backfolio.settings.dev")

application = get_wsgi_application()

from backfolio.workers import (  # noqa: E402
    GUNICORN_ROLE_ENV,
    freeze_loaded_objects,
    prepare_to_fork,
    start_embedded_workers,
    warm_engines,
)

# Warm before accepting requests: a worker that answers is a worker that is fast.
if os.environ.get(GUNICORN_ROLE_ENV) == "master":
    # gunicorn.conf.py preloads the app in its master: warm once, and leave the threads
    # (embedded workers, background compiling) to its post_fork hook, in each worker.
    prepare_to_fork()
else:
    # Any other WSGI server, or gunicorn without preload: this process serves, so it warms and
    # runs its own embedded workers.
    warm_engines()
    freeze_loaded_objects()
    start_embedded_workers()
