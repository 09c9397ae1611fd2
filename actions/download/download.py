"""dtrun/download: fetch INPUT_URL to INPUT_PATH, verify INPUT_SHA256, optionally unpack; write outputs."""

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile


def main() -> int:
    url, target = os.environ["INPUT_URL"], os.path.abspath(os.environ["INPUT_PATH"])
    expected = os.environ.get("INPUT_SHA256", "").strip().lower()
    extract = os.environ.get("INPUT_EXTRACT", "false") == "true"
    digest = hashlib.sha256()
    size = 0
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.NamedTemporaryFile(delete=False, dir=os.path.dirname(target)) as tmp, \
            urllib.request.urlopen(url, timeout=60) as response:
        while True:
            chunk = response.read(1 << 20)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            tmp.write(chunk)
    actual = digest.hexdigest()
    if expected and actual != expected:
        os.unlink(tmp.name)
        print(f"dtrun/download: sha256 mismatch for {url}: expected {expected}, got {actual}", file=sys.stderr)
        return 1
    if extract:
        os.makedirs(target, exist_ok=True)
        if zipfile.is_zipfile(tmp.name):
            with zipfile.ZipFile(tmp.name) as archive:
                archive.extractall(target)
        else:
            with tarfile.open(tmp.name) as archive:
                archive.extractall(target, filter="data")
        os.unlink(tmp.name)
    else:
        shutil.move(tmp.name, target)
    print(f"downloaded {url} ({size} bytes) to {target}")
    with open(os.environ["DTRUN_OUTPUT"], "a", encoding="utf-8") as out:
        out.write(f"path={target}\nsha256={actual}\nsize={size}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
