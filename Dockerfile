# devops-crew: the crew's own image. Build from the repository root.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEVOPS_CREW_HOME=/var/lib/devops-crew \
    CREWAI_DISABLE_TELEMETRY=true \
    CREWAI_TRACING_ENABLED=false \
    CREWAI_DISABLE_VERSION_CHECK=true

# git is what GitPython drives.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.* \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin crew \
    && mkdir -p /var/lib/devops-crew \
    && chown crew:crew /var/lib/devops-crew

WORKDIR /app
COPY pyproject.toml README.md ./
COPY teams/devops_automation ./teams/devops_automation
COPY agents ./agents
COPY tasks ./tasks
COPY tools ./tools
COPY packages/localforge ./packages/localforge
RUN pip install --no-cache-dir ./packages/localforge .

USER 10001
VOLUME ["/var/lib/devops-crew"]
# The pod's long-running process: A2A, JSON API, dashboard, /healthz, /readyz, /metrics on port 8080.
# A CronJob passes its own args (resume --pending, track).
ENV DEVOPS_CREW_SERVER_HOST=0.0.0.0 DEVOPS_CREW_SERVER_PORT=8080
EXPOSE 8080
ENTRYPOINT ["devops-crew"]
CMD ["serve"]
