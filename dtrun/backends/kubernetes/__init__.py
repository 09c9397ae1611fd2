"""The Kubernetes backend: one `batch/v1` Job per dtrun job, created through the official client.

`job` holds the small typed description of a job this backend runs, `manifests` turns it into the
objects dtrun creates (pure functions: golden-tested, validated against the API schemas, printable for
`--dry-run`), `status` reads what the cluster says back (pure), and `api` is the thin layer over the
`kubernetes` client (imported lazily; `pip install 'dtrun[kubernetes]'`).
"""
