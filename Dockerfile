# Kave: a multi-stage image. The build stage installs exactly the pinned, hashed lock file into
# a virtualenv; the runtime stage copies that virtualenv plus the code and nothing else.
#
# BASE_IMAGE must provide CPython 3.11 as `python3` with the venv module. It defaults to the
# official slim image; a Debian bookworm image with python3 + python3-venv works as well
# (`docker build --build-arg BASE_IMAGE=... .`). Both stages use the same base, so the
# interpreter the venv points at exists in the runtime stage too.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# `python3` rather than `python`: Debian's own python3 packages ship no `python` command.
RUN python3 -m venv /opt/venv

# integrations.txt is pip-compile output: flat (it repeats every pin of base.txt) and hashed,
# so it is the only file needed. Copied alone so that code changes keep this layer cached.
COPY requirements/integrations.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt


FROM ${BASE_IMAGE} AS runtime

ARG APP_UID=10001

# DATABASE_URL and STORAGE_LOCAL_PATH point at the writable data directory, so the image also
# runs on its own (SQLite + local storage); docker-compose.yml overrides both.
# FORWARDED_ALLOW_IPS empty: no peer's X-Forwarded-For is believed until it names the reverse
# proxy (uvicorn's own default, 127.0.0.1, is not Kave's).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/srv \
    DATABASE_URL=sqlite+aiosqlite:////srv/data/kave.db \
    STORAGE_LOCAL_PATH=/srv/data/attachments \
    FORWARDED_ALLOW_IPS=""

# A fixed uid/gid so volume ownership is predictable across rebuilds and hosts. The code stays
# owned by root (read-only for the service); only /srv/data is writable by it.
RUN groupadd --gid "${APP_UID}" kave \
    && useradd --no-log-init --no-create-home --uid "${APP_UID}" --gid kave \
        --home-dir /srv --shell /usr/sbin/nologin kave \
    && mkdir -p /srv/data \
    && chown kave:kave /srv/data

COPY --from=build /opt/venv /opt/venv
# The `kave` command, as `pip install -e .` gives it in a checkout (the image installs only
# the lock file, not the project), so `kave worker` and the docs' commands work here too
# (PYTHONPATH=/srv above lets it import the code from any working directory).
RUN printf '%s\n' '#!/opt/venv/bin/python' 'from app.cli.__main__ import cli' 'cli()' \
        > /opt/venv/bin/kave \
    && chmod 0755 /opt/venv/bin/kave

WORKDIR /srv
COPY alembic.ini ./
COPY alembic ./alembic
COPY app ./app

# Numeric, so runtimes that enforce runAsNonRoot can check it without reading /etc/passwd.
USER ${APP_UID}:${APP_UID}

EXPOSE 8000

# No curl in slim images: the venv's Python does the probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=3)"]

# --proxy-headers only trusts X-Forwarded-* from the addresses in FORWARDED_ALLOW_IPS (empty
# here, so none); set it to the reverse proxy's address when there is one.
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--no-server-header"]
