# One image for all five services; the command picks the service (python -m services.<name>).
# The web service's static assets (htmx, Pico CSS) come from the npm registry, pinned by its lock file.
FROM node:22-bookworm-slim AS web-assets
WORKDIR /assets
COPY services/web/package.json services/web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
COPY --from=web-assets /assets/node_modules ./services/web/node_modules
RUN pip install --no-cache-dir .
USER nobody
