# starpod-bot container image.
#
#   docker build -t starpod-bot .
#   docker run -p 3000:3000 -v starpod-data:/data \
#     -e SLACK_BOT_TOKEN -e SLACK_SIGNING_SECRET -e STARPOD_INSTANCE_BACKEND_URL starpod-bot
#
# Secrets come from the environment at run time; none is baked into the image.
# Both stages use the same pinned base, so the virtualenv copied across keeps working.

# -- builder: build the wheel, then install it (with its dependencies) into a virtualenv ------
FROM python:3.11.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY migrations ./migrations

# The wheel carries the migrations (as bot/_migrations), so the image needs no source tree.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install "$(ls /wheels/starpod_bot-*.whl)[postgres]"

# -- runtime: the virtualenv only, run as an unprivileged user -----------------------------
FROM python:3.11.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="starpod-bot" \
      org.opencontainers.image.description="Slack chat-ops bot for Starpod cloud instances" \
      org.opencontainers.image.licenses="MIT"

RUN groupadd --system --gid 10001 starpod \
 && useradd --system --uid 10001 --gid starpod --home-dir /home/starpod --create-home \
      --shell /usr/sbin/nologin starpod \
 && mkdir -p /data \
 && chown starpod:starpod /data

COPY --from=builder /opt/venv /opt/venv

# SQLite by default, on the volume; set DATABASE_URL=postgresql://… to run several replicas.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/starpod-bot.db \
    STARPOD_HTTP_HOST=0.0.0.0 \
    PORT=3000

VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 3000

# /healthz answers while the process serves; a wedged event loop fails it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=3)"]

CMD ["starpod-bot", "run"]
