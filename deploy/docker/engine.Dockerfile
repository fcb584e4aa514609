# syntax=docker/dockerfile:1
# The trading engine image (ECR repository algo-trading-<env>-trading).
# Build from the repository root:
#   docker build -f deploy/docker/engine.Dockerfile -t algo-trading:$(git rev-parse --short HEAD) .
# Runs as a non-root user on a read-only root filesystem; only /tmp is writable (ECS mounts a
# task volume there). No secret is baked in: ECS injects them from Secrets Manager at start.

# ---- build stage: compile the Cython kernels into a wheel (the full image ships gcc) ----
FROM python:3.11.11-bookworm AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml setup.py README.md LICENSE ./
COPY ext/ ext/
COPY src/ src/
RUN python -m pip wheel --wheel-dir /wheels .

# ---- runtime stage: slim Python, the wheels, a non-root user ----
FROM python:3.11.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TMPDIR=/tmp \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=build /wheels /wheels
RUN python -m pip install /wheels/*.whl \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 algo \
    && useradd --system --uid 10001 --gid algo --no-create-home --shell /usr/sbin/nologin algo
WORKDIR /tmp
USER 10001:10001
VOLUME ["/tmp"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["algoengine", "health"]
ENTRYPOINT ["algoengine"]
CMD ["run"]
