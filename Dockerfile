# One image for the API and (later) the worker; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY deskpilot ./deskpilot
COPY models ./models
COPY migrations ./migrations
COPY api ./api
RUN uv sync --no-dev
ENV PATH=/opt/venv/bin:$PATH
RUN useradd --system --home /app deskpilot
USER deskpilot
EXPOSE 8000
CMD ["deskpilot", "up", "--host", "0.0.0.0"]
