# Backfolio web and worker image. The same image serves the web (gunicorn) and the workers
# (`python manage.py rundramatiq`); docker-compose.yml shows both.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=backfolio.settings.prod \
    NUMBA_CACHE_DIR=/app/var/numba-cache \
    MEDIA_ROOT=/app/var/media \
    STATIC_ROOT=/app/var/staticfiles

WORKDIR /app

# curl for the container health check; libgomp for numba's threading layer.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl libgomp1 \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

RUN groupadd --system backfolio && useradd --system --gid backfolio --home /app backfolio
COPY --chown=backfolio:backfolio . .

# Static files and the numba code the engines cache on disk are baked into the image, so a
# container serves its first backtest quickly. Neither step needs a database.
RUN mkdir -p var && chown -R backfolio:backfolio var \
    && DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=localhost \
       python manage.py collectstatic --noinput -v 0 \
    && su backfolio -s /bin/sh -c "DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=localhost python manage.py warm_engines"

USER backfolio
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS -H "X-Forwarded-Proto: https" http://127.0.0.1:8000/healthz || exit 1

# Migrations run on deploy (idempotent), then gunicorn serves.
# gunicorn.conf.py preloads the app so the engines are warmed once in the master.
ENV HOST=0.0.0.0 PORT=8000 WEB_WORKERS=3 WEB_THREADS=4
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn -c gunicorn.conf.py backfolio.wsgi --access-logfile -"]
