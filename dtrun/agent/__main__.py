"""`python -m dtrun.agent [--manifest PATH]`: run one job from its manifest (see `dtrun.agent.manifest`).

Without `--manifest` the manifest is the JSON text in `DTRUN_AGENT_MANIFEST`. The exit code is the
job command's, so the backend (Slurm's job state, Kubernetes' pod phase) sees the job's own result.
"""

from __future__ import annotations

import os
import sys

from dtrun.agent.manifest import JobManifest, ManifestError

#: The manifest could not be read: the backend and the image disagree (exit code, as `docker run`'s).
BAD_MANIFEST = 125


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args[:1] == ["--manifest"] and len(args) == 2:
            with open(args[1], encoding="utf-8") as fh:
                text = fh.read()
        elif not args:
            text = os.environ.get("DTRUN_AGENT_MANIFEST", "")
            if not text:
                raise ManifestError("no job manifest: set DTRUN_AGENT_MANIFEST or pass --manifest PATH")
        else:
            print("usage: python -m dtrun.agent [--manifest PATH]", file=sys.stderr)
            return 2
        manifest = JobManifest.from_json(text)
    except (OSError, ManifestError) as exc:
        print(f"dtrun agent: {exc}", file=sys.stderr)
        return BAD_MANIFEST
    from dtrun.agent.runner import Agent

    return Agent(manifest, echo=sys.stdout.buffer).run()


if __name__ == "__main__":
    sys.exit(main())
