# devops-crew: the crew's own image. Build from the repository root:
#   docker build -t devops-crew:0.1.0 .
#   docker build --build-arg WITH_LOCALFORGE=true -t devops-crew:demo .   # with the embedded forge
# BASE is any Debian bookworm image with python3 (3.11), python3-venv and git's dependencies; the default
# is the official slim Python image, pinned by version. tests/test_image.py passes a base made by mmdebstrap.
ARG BASE=python:3.11.11-slim-bookworm

# ---- builder: a virtualenv with every dependency pinned by constraints.txt (scripts/lock makes it).
FROM ${BASE} AS builder
ARG WITH_LOCALFORGE=false
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python3 -m venv /opt/devops-crew
COPY constraints.txt ./
# The dependencies first, in their own layer: a change to the product's code does not reinstall them.
# pip's download cache is a build cache mount, so it never lands in the image and rebuilds reuse it.
RUN --mount=type=cache,target=/root/.cache/pip /opt/devops-crew/bin/pip install -r constraints.txt
COPY pyproject.toml README.md ./
COPY teams/devops_automation ./teams/devops_automation
COPY agents ./agents
COPY tasks ./tasks
COPY tools ./tools
COPY packages/localforge ./packages/localforge
RUN /opt/devops-crew/bin/pip install --no-cache-dir --no-deps -c constraints.txt . \
    && if [ "$WITH_LOCALFORGE" = "true" ]; then \
         /opt/devops-crew/bin/pip install --no-cache-dir --no-deps ./packages/localforge; \
       fi

# ---- runtime: the virtualenv, git and a non-root user; nothing is written outside the volumes.
FROM ${BASE}
ENV PATH=/opt/devops-crew/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    DEVOPS_CREW_HOME=/var/lib/devops-crew \
    DEVOPS_CREW_SERVER_HOST=0.0.0.0 \
    DEVOPS_CREW_SERVER_PORT=8080 \
    CREWAI_DISABLE_TELEMETRY=true \
    CREWAI_TRACING_ENABLED=false \
    CREWAI_DISABLE_VERSION_CHECK=true \
    OTEL_SDK_DISABLED=true

# git is what GitPython drives (a base made by mmdebstrap has it already).
RUN if ! command -v git >/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends git=1:2.39.* \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 crew \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin crew \
    && mkdir -p /var/lib/devops-crew \
    && chown crew:crew /var/lib/devops-crew
COPY --from=builder /opt/devops-crew /opt/devops-crew

# Read-only root: state (checkout, renders, CrewAI's storage) on this volume, the rest in /tmp.
USER 10001:10001
VOLUME ["/var/lib/devops-crew", "/tmp"]
EXPOSE 8080
# The probes Kubernetes uses are the Deployment's (k8s/base/deployment.yaml); this one is for docker/podman.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["devops-crew"]
CMD ["serve"]
