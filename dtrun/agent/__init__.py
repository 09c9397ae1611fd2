"""The in-job agent: what runs inside a job on a backend whose client cannot reach the container.

On Slurm (and later Kubernetes) the client never talks to the container, so `python -m dtrun.agent`
does inside the job what the Docker backend does from outside: it fetches the code snapshot and the
dep artifacts from the store, runs the job's command with its env and secrets, writes masked,
timestamped logs to the store as it goes, saves the declared artifacts (and `mount: true`
checkpoints while it runs) and records the exit in the store, where the engine reads it.

Its input is a job manifest (`dtrun.agent.manifest`). It imports only the standard library, fsspec
(plus the store's own driver, s3fs for S3) and dtrun's standard-library modules (archive, masking),
so an image needs nothing else to run it.
"""

import sys

#: The oldest Python the agent and the modules it ships with (fsspec among them) run on.
OLDEST_PYTHON = (3, 9)

if sys.version_info < OLDEST_PYTHON:  # said before anything newer than this Python can fail to import
    sys.exit(f"dtrun's in-job agent needs Python {'.'.join(map(str, OLDEST_PYTHON))} or later; {sys.executable} "
             f"is Python {sys.version.split()[0]}. Point the backend's `agent_python` setting (slurm.agent_python, "
             "kubernetes.agent_python) at a newer Python in the job's image, e.g. /usr/bin/python3.")
