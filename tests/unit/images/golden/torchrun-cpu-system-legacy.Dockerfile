FROM dtrun-local/base:bookworm
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
ARG DTRUN_REBUILD
RUN python3 -m venv /opt/dtrun/venv
ENV VIRTUAL_ENV=/opt/dtrun/venv \
    PATH=/opt/dtrun/venv/bin:$PATH
RUN if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; set -eu; \
    if python -c "import urllib.request; urllib.request.urlopen('https://download.pytorch.org/whl/cpu/torch/', timeout=15)" 2>/dev/null; then \
      set -- --index-url https://download.pytorch.org/whl/cpu; \
    else \
      echo "dtrun: download.pytorch.org cannot be reached: torch comes from PyPI (Linux wheels bundle CUDA, run on CPU too)"; \
      set --; \
    fi; \
    pip install "torch==2.15.*" "$@"
COPY requirements.txt /opt/dtrun/requirements.txt
RUN if [ -f /run/secrets/dtrun-ca ]; then export PIP_CERT=/run/secrets/dtrun-ca SSL_CERT_FILE=/run/secrets/dtrun-ca REQUESTS_CA_BUNDLE=/run/secrets/dtrun-ca CURL_CA_BUNDLE=/run/secrets/dtrun-ca CONDA_SSL_VERIFY=/run/secrets/dtrun-ca; fi; pip install -r /opt/dtrun/requirements.txt
LABEL dev.dtrun.base="dtrun-local/base:bookworm"
LABEL dev.dtrun.base-id="sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
LABEL dev.dtrun.cuda=""
LABEL dev.dtrun.gpu="0"
LABEL dev.dtrun.image="1"
LABEL dev.dtrun.provider="torchrun"
LABEL dev.dtrun.python="3.11"
LABEL dev.dtrun.python-install="system"
LABEL dev.dtrun.spec="{\"apt_packages\":[],\"base\":null,\"cuda\":null,\"extra_env\":[],\"gpu\":false,\"pip_packages\":[],\"provider\":\"torchrun\",\"python\":null,\"python_install\":\"system\",\"requirements\":\"4b8183101fd19f071771805a42a31fbb234a7961921fdb8b783a279755a1b5d5\",\"tools\":[\"torch\"],\"user_image\":null}"
LABEL dev.dtrun.tools="torch"
