# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
# No shell tricks, no root: the operator only talks to the apiserver and the providers.
USER 65532:65532
ENTRYPOINT ["botsecret"]
CMD ["run"]
