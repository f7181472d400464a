# Worker image: `python worker.py`, configured by TEMPORAL_* and KEEL_* variables.

# Build stage: llama-cpp-python compiles from source (a portable AVX2 build, not
# -march=native, so the image runs on CPUs other than the build machine's).
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md worker.py client.py devserver.py ./
COPY activities ./activities
COPY keel ./keel
COPY workflows ./workflows
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF"
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 keel \
 && mkdir /data && chown keel /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels keel && rm -rf /wheels
WORKDIR /app
# The source tree beside the installed dependencies: contracts/ and corpus/ are read at run time.
COPY --chown=keel . .
# Bytecode ahead of time: the workflow sandbox re-imports a workflow's module for every run.
RUN python -m compileall -q activities keel workflows
USER keel
ENV KEEL_LOG_FORMAT=json \
    KEEL_DOCUMENTS_DB=/data/documents.db \
    KEEL_METRICS_PORT=9464 \
    PYTHONUNBUFFERED=1
VOLUME /data
EXPOSE 9464
STOPSIGNAL SIGTERM
CMD ["python", "worker.py"]
