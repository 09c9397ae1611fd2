FROM dtrun-local/base:bookworm
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
ARG DTRUN_REBUILD
RUN --mount=type=secret,id=dtrun-ca --mount=type=cache,id=dtrun-pip,target=/root/.cache/pip if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; set -eu; \
    python3 -m venv /opt/dtrun/uv; \
    /opt/dtrun/uv/bin/pip install -q uv; \
    ln -sf /opt/dtrun/uv/bin/uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/dtrun/python \
    UV_LINK_MODE=copy
RUN --mount=type=secret,id=dtrun-ca --mount=type=cache,id=dtrun-uv,target=/root/.cache/uv if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; uv venv --seed --python-preference only-system --python 3.11 /opt/dtrun/venv
ENV VIRTUAL_ENV=/opt/dtrun/venv \
    PATH=/opt/dtrun/venv/bin:$PATH
RUN --mount=type=cache,id=dtrun-apt-cache,target=/var/cache/apt,sharing=locked --mount=type=cache,id=dtrun-apt-lists,target=/var/lib/apt/lists,sharing=locked set -eu; rm -f /etc/apt/apt.conf.d/docker-clean; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates build-essential python3 pkg-config libkrb5-dev
RUN --mount=type=secret,id=dtrun-ca if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; set -eu; \
    arch=$(uname -m | sed -e s/x86_64/x64/ -e s/aarch64/arm64/); \
    fetch() { curl -fsSL "$1" -o "$2" || { echo "dtrun: cannot download $1 (code-server's Node comes from the npm registry, which builds must reach)" >&2; exit 1; }; }; \
    fetch "https://registry.npmjs.org/node-linux-${arch}/-/node-linux-${arch}-24.22.3.tgz" /tmp/node.tgz; \
    fetch "https://registry.npmjs.org/npm/-/npm-10.9.9.tgz" /tmp/npm.tgz; \
    mkdir -p /opt/dtrun-node/lib/node_modules/npm; \
    tar -xzf /tmp/node.tgz -C /opt/dtrun-node --strip-components=1; \
    tar -xzf /tmp/npm.tgz -C /opt/dtrun-node/lib/node_modules/npm --strip-components=1; \
    rm /tmp/node.tgz /tmp/npm.tgz; \
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js /opt/dtrun-node/bin/npm; \
    /opt/dtrun-node/bin/node --version
RUN --mount=type=secret,id=dtrun-ca if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; set -eu; export PATH=/opt/dtrun-node/bin:$PATH npm_config_nodedir=/opt/dtrun-node \
      npm_config_python=python3 npm_config_registry=https://registry.npmjs.org/; \
    if [ -f /run/secrets/dtrun-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/dtrun-ca npm_config_cafile=/run/secrets/dtrun-ca; fi; \
    npm install -g --no-audit --no-fund --prefix /opt/dtrun-node code-server@4.139.1 \
      || { echo "dtrun: installing code-server@4.139.1 from https://registry.npmjs.org failed (see above)" >&2; exit 1; }; \
    rm -rf /root/.npm; \
    ln -sf /opt/dtrun-node/bin/code-server /usr/local/bin/code-server; \
    code-server --version
RUN ln -sf /opt/dtrun-node/bin/node /usr/local/bin/node
COPY requirements.txt /opt/dtrun/requirements.txt
RUN --mount=type=secret,id=dtrun-ca --mount=type=cache,id=dtrun-uv,target=/root/.cache/uv if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; uv pip install --python /opt/dtrun/venv/bin/python -r /opt/dtrun/requirements.txt
LABEL dev.dtrun.base="dtrun-local/base:bookworm"
LABEL dev.dtrun.base-id="sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
LABEL dev.dtrun.cuda=""
LABEL dev.dtrun.gpu="0"
LABEL dev.dtrun.image="1"
LABEL dev.dtrun.provider="code"
LABEL dev.dtrun.python="3.11"
LABEL dev.dtrun.python-install="uv"
LABEL dev.dtrun.spec="{\"apt_packages\":[],\"base\":null,\"cuda\":null,\"extra_env\":[],\"gpu\":false,\"pip_packages\":[],\"provider\":\"code\",\"python\":null,\"python_install\":\"uv\",\"requirements\":\"4b8183101fd19f071771805a42a31fbb234a7961921fdb8b783a279755a1b5d5\",\"tools\":[\"code-server\"],\"user_image\":null}"
LABEL dev.dtrun.tools="code-server"
