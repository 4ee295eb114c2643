import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backfolio.settings.dev")

application = get_wsgi_application()

from backfolio.workers import start_embedded_workers, warm_engines  # noqa: E402

# Warm before accepting requests: a gunicorn worker that answers is a worker that is fast.
warm_engines()
start_embedded_workers()
