# Phoenix app image: the Streamlit UI with the embedded scheduler. It installs exactly as
# `make smoke` does (scripts/install.sh: requirements.txt, the gRPC stubs generated from proto/,
# then a non-editable package, no dev tools) and runs as an unprivileged user with its data on a
# volume. The stubs are always generated here (.dockerignore leaves out any the host holds).
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*
COPY . /tmp/phoenix-src
RUN sh /tmp/phoenix-src/scripts/install.sh python \
 && cd / && python -c "import core.api.grpc_server" \
 && rm -rf /tmp/phoenix-src /root/.cache \
 && useradd --system --uid 10001 --create-home --home-dir /home/phoenix phoenix \
 && mkdir -p /data && chown phoenix:phoenix /data
USER 10001:10001
WORKDIR /data
ENV PHOENIX_DATA_DIR=/data \
    PHOENIX_DATABASE_URL=sqlite:////data/phoenix.db
VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
# First start: `phoenix user init` creates the admin and prints its password once to the log
# (also in /data/initial_admin_password, 0600); without an account nobody could sign in.
CMD ["sh", "-c", "phoenix db upgrade && phoenix user init && exec phoenix ui --host 0.0.0.0 --port 8501"]
