# LAPOR! intake gateway: production image.
#
#   docker build -t lapor-gateway .
#   docker run --rm lapor-gateway check-config      # validate the settings, secrets masked
#
# The image runs `lapor-gateway` (gateway/cli.py); the default command is `serve`. Settings come
# from /app/config/gateway.toml overridden by LAPOR_<SECTION>__<KEY> variables; secrets
# (passwords, keys, tokens: LAPOR_DATABASE__PASSWORD, LAPOR_SECURITY__DATA_KEY... the list is in
# config/gateway.toml) are never baked in: pass them at run time. docker-compose.yml shows the
# full production setup.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build stage: install the project and its dependencies into a virtualenv -----------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# README* matches nothing when the file is absent; the build does not depend on it.
COPY pyproject.toml README* ./
# The packages of [tool.setuptools.packages.find] in pyproject.toml.
COPY gateway ./gateway
COPY channels ./channels
COPY normalizer ./normalizer
# Runtime dependencies only (no [test] extra). Every dependency ships manylinux wheels, so no
# compiler is needed.
RUN pip install .

# --- runtime stage: the virtualenv, the settings file, an unprivileged user -------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="lapor-gateway" \
      org.opencontainers.image.description="LAPOR! intake gateway" \
      org.opencontainers.image.licenses="Apache-2.0"

# LAPOR_HTTP__HOST: listen on every interface of the container (the file's default is loopback).
# LAPOR_CONFIG: the settings file copied below, whatever the working directory.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LAPOR_CONFIG=/app/config/gateway.toml \
    LAPOR_HTTP__HOST=0.0.0.0

# The letter channel reads scans with Tesseract and its Indonesian model (channels/letter/ocr.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-ind \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 lapor \
    && useradd --system --uid 10001 --gid lapor --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin lapor

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Code and settings stay owned by root: the gateway cannot change them.
COPY config/ ./config/
# var/ holds the file store (storage.file_store = "var/files", i.e. /app/var/files). It is the
# only place the gateway writes; a fresh named volume mounted here inherits this ownership.
RUN mkdir -p /app/var/files && chown -R 10001:10001 /app/var
VOLUME ["/app/var"]

USER 10001:10001

EXPOSE 8080

# Liveness only (/healthz answers 200 while the process runs). slim has no curl: use urllib,
# which exits non-zero on a refused connection or an error status. No proxy: an HTTP_PROXY
# injected into the container must not catch 127.0.0.1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/healthz' % os.environ.get('LAPOR_HTTP__PORT', '8080'), timeout=4)"]

# Exec form: lapor-gateway is PID 1 and gets SIGTERM itself (`serve` stops cleanly on it).
ENTRYPOINT ["lapor-gateway"]
CMD ["serve"]
