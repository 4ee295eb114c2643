import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backfolio.settings.dev")

application = get_wsgi_application()

from backfolio.workers import start_embedded_workers  # noqa: E402

start_embedded_workers()
