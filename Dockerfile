# One image for the web app, the migration job and the workers.
# EXTRAS=ml adds torch for GPU workers (issue: the PGGAN engine); the web image stays torch-free.
FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 STORE_DIR=/data
WORKDIR /app
# Pango lets WeasyPrint lay out the study report as PDF.
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY model_store ./model_store
RUN pip install --no-cache-dir -e ".${EXTRAS:+[$EXTRAS]}"
RUN useradd --create-home cxrlab && mkdir -p /data && chown cxrlab /data
USER cxrlab
EXPOSE 8000
CMD ["cxrlab", "serve", "--host", "0.0.0.0", "--no-migrate"]
