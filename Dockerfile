# syntax=docker/dockerfile:1
# relayd container image.
#
#   docker build -t relayd .
#   docker run -d --name relayd --stop-timeout 30 -p 8080:8080 \
#     -e RELAYD_ACCESS_KEY=... -e RELAYD_SECRET_KEY=... -e RELAYD_PUBLIC_URL=https://relay.example.com \
#     -v /srv/relayd/etc:/etc/relayd:ro -v relayd-state:/var/lib/relayd relayd
#
# /etc/relayd holds relayd.toml and schedules.d/ (read-only is fine); /var/lib/relayd holds the state database
# and the generated api_token, and must be writable by uid 10001. --stop-timeout 30 gives the daemon's graceful
# shutdown (shutdown_timeout, 20 s) room before Docker's SIGKILL (default 10 s).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: relayd's wheel plus wheels of all its dependencies -------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY relayd ./relayd
RUN pip wheel --wheel-dir /wheels .

# --- runtime: a venv installed from those wheels only, run as a non-root user --------------------------------
FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/relayd/bin:$PATH \
    RELAYD_LISTEN=0.0.0.0:8080 \
    RELAYD_STATE_PATH=/var/lib/relayd/state.db \
    RELAYD_SCHEDULES_DIR=/etc/relayd/schedules.d
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/relayd \
    && /opt/relayd/bin/pip install --no-index --find-links /wheels relayd \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/relayd --shell /usr/sbin/nologin relayd \
    && install -d -o relayd -g relayd -m 0700 /var/lib/relayd \
    && install -d -m 0755 /etc/relayd /etc/relayd/schedules.d
# The example config (every key commented out at its default): the image runs on env settings alone.
COPY config/relayd.toml /etc/relayd/relayd.toml

USER relayd
WORKDIR /var/lib/relayd
VOLUME ["/etc/relayd", "/var/lib/relayd"]
EXPOSE 8080
# No curl in slim images: ask /healthz with the stdlib, on the port from RELAYD_LISTEN.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('RELAYD_LISTEN', ':8080').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
ENTRYPOINT ["relayd"]
CMD ["run", "--config", "/etc/relayd/relayd.toml"]
