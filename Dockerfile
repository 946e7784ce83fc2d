# One image for the API, the worker and the one-shot migration; docker-compose.yml picks
# the command (`deskpilot api`, `deskpilot worker`, `deskpilot db upgrade`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv
WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md alembic.ini ./
RUN uv sync --no-dev --no-install-project
COPY kernel ./kernel
COPY domain ./domain
COPY services ./services
COPY deskpilot ./deskpilot
COPY models ./models
COPY migrations ./migrations
COPY api ./api
COPY workflows ./workflows
COPY activities ./activities
COPY integrations ./integrations
COPY sandbox ./sandbox
COPY worker.py ./
RUN uv sync --no-dev
ENV PATH=/opt/venv/bin:$PATH
RUN useradd --system --home /app deskpilot
USER deskpilot
EXPOSE 8000
# Exec form: the process gets SIGTERM from `docker stop` and shuts down in order.
CMD ["deskpilot", "api", "--host", "0.0.0.0"]
