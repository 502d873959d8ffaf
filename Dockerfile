# The gemini controller image: `docker build -t gemini-controller:0.1.0 .`
# Build stage: a wheel of the package and its pinned dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md* ./
COPY gemini ./gemini
RUN pip wheel --no-cache-dir --wheel-dir /wheels --constraint constraints.txt .

# Runtime stage: no compilers, no sources, a non-root user, nothing written outside the volumes.
FROM python:3.11-slim
RUN groupadd --gid 65532 gemini \
 && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin gemini
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels gemini-autoscaler \
 && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GEMINI_DATA_DIR=/var/lib/gemini \
    GEMINI_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["gemini", "controller"]
CMD ["--port", "8080"]
