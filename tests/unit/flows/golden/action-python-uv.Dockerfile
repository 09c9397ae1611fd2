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
RUN --mount=type=secret,id=dtrun-ca --mount=type=cache,id=dtrun-uv,target=/root/.cache/uv if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; \
    uv pip install --python /opt/dtrun/venv/bin/python "datatorch>=0.8,<1" \
    && uv pip uninstall --python /opt/dtrun/venv/bin/python opencv-python \
    && uv pip install --python /opt/dtrun/venv/bin/python opencv-python-headless
COPY requirements.txt /opt/dtrun/requirements.txt
RUN --mount=type=secret,id=dtrun-ca --mount=type=cache,id=dtrun-uv,target=/root/.cache/uv if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; uv pip install --python /opt/dtrun/venv/bin/python -r /opt/dtrun/requirements.txt
LABEL dev.dtrun.base="dtrun-local/base:bookworm"
LABEL dev.dtrun.base-id="sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
LABEL dev.dtrun.cuda=""
LABEL dev.dtrun.gpu="0"
LABEL dev.dtrun.image="1"
LABEL dev.dtrun.provider="action-python"
LABEL dev.dtrun.python="3.11"
LABEL dev.dtrun.python-install="uv"
LABEL dev.dtrun.spec="{\"apt_packages\":[],\"base\":null,\"cuda\":null,\"extra_env\":[],\"gpu\":false,\"pip_packages\":[],\"provider\":\"action-python\",\"python\":null,\"python_install\":\"uv\",\"requirements\":\"e09f656c130b9c08b2c5ab7187c891295e449ed77febea2a6ceee9cc98ccb0fc\",\"tools\":[\"datatorch\"],\"user_image\":null}"
LABEL dev.dtrun.tools="datatorch"
