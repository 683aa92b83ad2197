# syntax=docker/dockerfile:1
# The operator's image. BASE is any image with Python >= 3.11 and its venv module at python3: by
# default the official slim Python image; the test world, which reaches no container registry,
# builds on a Debian bookworm root filesystem with Debian's python3 (hack/build-image.sh).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
# A package index and its CA for builds behind a proxy; the final stage keeps neither.
ARG PIP_INDEX_URL
ARG PIP_CERT
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# Wheels only: no compiler is needed here, and none reaches the final stage.
RUN python3 -m venv /opt/botsecret \
    && /opt/botsecret/bin/pip install --no-cache-dir --only-binary=:all: . \
    && /opt/botsecret/bin/python -m compileall -q /opt/botsecret

FROM ${BASE}
# The same base as the build stage, so the venv's interpreter link resolves.
COPY --from=build /opt/botsecret /opt/botsecret
# Under readOnlyRootFilesystem nothing may be written: the bytecode was compiled above.
ENV PATH=/opt/botsecret/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# No root, and a numeric user, so that runAsNonRoot can check it without a passwd entry.
USER 65532:65532
ENTRYPOINT ["/opt/botsecret/bin/botsecret"]
CMD ["run"]
