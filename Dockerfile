# feedback-bot in a container: the README's first command, as a non-root user, with the
# database on a volume. The image runs `feedback-bot`; what follows the image name is its
# command (`run` when there is none).
#
#   docker build -t feedback-bot .
#   docker run --env-file .env -p 3000:3000 -v feedback-data:/data feedback-bot
#   docker run --rm --env-file .env -v feedback-data:/data feedback-bot doctor
#   docker run --rm feedback-bot --version
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    FEEDBACK_DB=/data/feedback.db \
    FEEDBACK_HOST=0.0.0.0 \
    FEEDBACK_PORT=3000 \
    PATH=/app/.venv/bin:$PATH

RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /data feedback \
    && mkdir /data && chown feedback:feedback /data

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
# The README's first command: its install step here, its start as ENTRYPOINT and CMD below
# (the venv is first on PATH, so `feedback-bot` is the one installed here, also for
# `docker exec CONTAINER feedback-bot deliveries list`).
RUN python3 -m venv .venv && .venv/bin/pip install -q -e .
# Optional extras: `docker build --build-arg EXTRAS=postgres .` for FEEDBACK_DB=postgresql://…
ARG EXTRAS=""
RUN if [ -n "$EXTRAS" ]; then .venv/bin/pip install -q -e ".[$EXTRAS]"; fi

USER feedback
VOLUME ["/data"]
EXPOSE 3000
# /healthz is 200 only when the database takes writes (and, in Socket Mode, Slack's
# connection is up); urlopen raises on a 503.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/app/.venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('FEEDBACK_PORT', '3000') + '/healthz', timeout=4)"]
# feedback-bot is PID 1 (exec form): SIGTERM reaches it, and it stops taking requests, gives
# sends in flight 5 seconds and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["feedback-bot"]
CMD ["run"]
