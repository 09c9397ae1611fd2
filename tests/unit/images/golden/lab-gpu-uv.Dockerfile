FROM nvidia/cuda:13.2.1-runtime-ubuntu24.04
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
ARG DTRUN_REBUILD
RUN --mount=type=cache,id=dtrun-apt-cache,target=/var/cache/apt,sharing=locked --mount=type=cache,id=dtrun-apt-lists,target=/var/lib/apt/lists,sharing=locked set -eu; rm -f /etc/apt/apt.conf.d/docker-clean; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates
RUN --mount=type=secret,id=dtrun-ca --mount=type=cache,id=dtrun-pip,target=/root/.cache/pip if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; set -eu; \
    python3 -m venv /opt/dtrun/uv; \
    /opt/dtrun/uv/bin/pip install -q uv; \
    ln -sf /opt/dtrun/uv/bin/uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/dtrun/python \
    UV_LINK_MODE=copy
RUN --mount=type=secret,id=dtrun-ca --mount=type=cache,id=dtrun-uv,target=/root/.cache/uv if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; set -eu; \
    uv python install 3.11; \
    uv venv --seed --python-preference only-managed --python 3.11 /opt/dtrun/venv
ENV VIRTUAL_ENV=/opt/dtrun/venv \
    PATH=/opt/dtrun/venv/bin:$PATH
RUN --mount=type=secret,id=dtrun-ca --mount=type=cache,id=dtrun-uv,target=/root/.cache/uv if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; uv pip install --python /opt/dtrun/venv/bin/python "jupyterlab>=4,<5"
COPY requirements.txt /opt/dtrun/requirements.txt
RUN --mount=type=secret,id=dtrun-ca --mount=type=cache,id=dtrun-uv,target=/root/.cache/uv if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; uv pip install --python /opt/dtrun/venv/bin/python -r /opt/dtrun/requirements.txt
LABEL dev.dtrun.base="nvidia/cuda:13.2.1-runtime-ubuntu24.04"
LABEL dev.dtrun.base-id="sha256:9999999999999999999999999999999999999999999999999999999999999999"
LABEL dev.dtrun.cuda="13.2"
LABEL dev.dtrun.gpu="1"
LABEL dev.dtrun.image="1"
LABEL dev.dtrun.provider="lab"
LABEL dev.dtrun.python="3.11"
LABEL dev.dtrun.python-install="uv"
LABEL dev.dtrun.spec="{\"apt_packages\":[],\"base\":null,\"cuda\":null,\"extra_env\":[],\"gpu\":true,\"pip_packages\":[],\"provider\":\"lab\",\"python\":null,\"python_install\":\"uv\",\"requirements\":\"4b8183101fd19f071771805a42a31fbb234a7961921fdb8b783a279755a1b5d5\",\"tools\":[\"jupyterlab\"],\"user_image\":null}"
LABEL dev.dtrun.tools="jupyterlab"
