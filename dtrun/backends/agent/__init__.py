"""The shared path of every backend whose client cannot reach the job's container (Slurm, Kubernetes).

Such a backend hands each job over whole (`AgentBackend.launch`, see `dtrun.backends.base`) and the
in-job agent (`python -m dtrun.agent`, standard library plus fsspec) does inside the job what the
Docker backend does from outside: it unpacks the code snapshot and the dep artifacts from the store,
runs the command with its env and secrets, writes masked timestamped logs to `jobs/<id>/logs.txt`,
saves the declared outputs (and `mount: true` checkpoints) and records the exit in `jobs/<id>/agent.json`.
The store must therefore be one both sides reach (S3, or a folder shared by the nodes).

- `backend.AgentJobBackend`: a base class implementing the whole engine-facing `Backend` +
  `AgentBackend` protocols over five queue operations a cluster backend writes (`submit_job`,
  `list_jobs`, `signal_job`, `cancel_job`, `release_job`) and one `QueueJob` type it reports in.
  Logs, waiting, exit codes, saved outputs, claiming and "stopped outside dtrun" come from here.
- `images.with_agent`: the job image plus the agent as one cached layer (dtrun's package and fsspec,
  copied in: nodes need nothing pre-installed; an S3 store adds `s3fs` to the image's pip packages).
- `status`: reading `agent.json` and following `logs.txt` in the store.

The engine side is `dtrun/engine/agent_job.py` (code to the store, manifest, launch, follow, collect);
a new cluster backend is one folder: a subclass of `AgentJobBackend` plus its `create(settings, host)`.
"""

from dtrun.backends.agent.backend import AgentHandle, AgentJobBackend, QueueJob

__all__ = ["AgentHandle", "AgentJobBackend", "QueueJob"]
