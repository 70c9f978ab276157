# syntax=docker/dockerfile:1
# Eventgate: `eventgate serve` by default; the same image runs migrations
# (`eventgate migrate apply`) and workers (`procrastinate --app=workers.app.app worker`).

FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9.7 /uv /usr/local/bin/uv
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
# Dependencies first: they change less often than the code, so this layer is reused.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY app ./app
COPY cli ./cli
COPY core ./core
COPY db ./db
COPY workers ./workers
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin eventgate
WORKDIR /app
COPY --from=build --chown=10001:10001 /app /app
ENV PATH="/app/.venv/bin:${PATH}" PYTHONUNBUFFERED=1
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health/ready', timeout=2)"]
CMD ["eventgate", "serve", "--host", "0.0.0.0", "--port", "8080"]
