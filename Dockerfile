# syntax=docker/dockerfile:1
# One image for the whole of dscache: the operator (`dscache-operator run`, the chart overrides the
# command), installer Jobs and the pods' init container (`dscache install|prepare ...`, the default
# entrypoint). Build: docker build -t ghcr.io/dscache/dscache:0.1.0 .
# VERSION must equal pyproject.toml's version and the chart's appVersion (tests/charts check it).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY initcontainer/ initcontainer/
COPY operator/ operator/
# The wheel, then a self-contained virtualenv with it and the operator extra (binary wheels only).
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && wheel="$(echo /wheels/dscache-*.whl)" \
    && /opt/venv/bin/pip install --only-binary=:all: "${wheel}[operator]" \
    && /opt/venv/bin/dscache --version

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="dscache" \
      org.opencontainers.image.description="Versioned dataset cache for Kubernetes training jobs: operator, installer and init container." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# libarchive13 (with zstd) is loaded by libarchive-c at run time; https remotes are verified against
# the system trust store (ca-certificates), not a bundle shipped in the venv. Unpinned on purpose: the
# base tag pins the Debian release, and security updates should be taken on rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libarchive13 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 dscache \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin dscache
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# 65532 matches the operator's runAsUser for installer Jobs and the chart's podSecurityContext.
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["dscache"]
CMD ["--help"]
