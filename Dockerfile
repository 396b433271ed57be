# mmctl: one image for the controller and the exchange simulator, locally (docker compose) and on AWS
# (docs/deploy-aws.md). Checked by tests/deploy/test_dockerfile.py (no Docker engine needed to run it).
#
#   docker build -t mmctl .
#   docker run --rm -v "$PWD/my-specs:/etc/mmctl:ro" -v mmctl-state:/var/lib/mmctl mmctl
#
# Stage 1 builds a wheel of the package (and of its dependencies); stage 2 installs them, non-editable, into a
# clean slim image and runs as an unprivileged user. No compiler reaches the final image.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mm ./mm
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    MMCTL_STATE_DIR=/var/lib/mmctl \
    MMCTL_HEALTH_URL=http://127.0.0.1:8080/health
RUN groupadd --system --gid 10001 mmctl \
    && useradd --system --uid 10001 --gid mmctl --home-dir /var/lib/mmctl --no-create-home \
        --shell /usr/sbin/nologin mmctl \
    && mkdir -p /var/lib/mmctl /etc/mmctl \
    && chown mmctl:mmctl /var/lib/mmctl \
    && chmod 0750 /var/lib/mmctl
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels mmctl && rm -rf /wheels

USER mmctl
WORKDIR /var/lib/mmctl
# State: the SQLite database, checkpoint, lock, session recordings. Specs are mounted read-only at /etc/mmctl.
VOLUME ["/var/lib/mmctl"]
# The control API (TradingNode api.port). It binds to loopback unless the node's spec sets api.host: 0.0.0.0
# and allow_non_loopback: true; publish it to the host's loopback only, never to the internet.
EXPOSE 8080

# The control API's unauthenticated liveness route; slim has no curl, so Python asks. A node whose API
# listens elsewhere sets MMCTL_HEALTH_URL.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('MMCTL_HEALTH_URL', 'http://127.0.0.1:8080/health'), timeout=4)"]

ENTRYPOINT ["mmctl"]
CMD ["run", "-f", "/etc/mmctl", "--state-dir", "/var/lib/mmctl"]
