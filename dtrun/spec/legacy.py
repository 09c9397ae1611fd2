"""Historical dstack workflow forms (0.0.x to 0.7) rewritten into today's, before properties are checked.

dstack changed its workflow syntax many times between the hosted dstack.ai of early 2022 and 0.7;
repositories still carry every form. Each rewrite here keeps the meaning the form had:

- `template:` (early 2022): a mapping of properties the workflow is made from (its own keys win), or
  the name of the provider;
- `provider: {repo, name}` and `provider: lab@experimental`: the provider `name` (a provider of another
  repository cannot be fetched: a warning says so when the built-in one of that name runs);
  `vscode` is the `code` provider;
- top-level `gpu: 1` (older `python` workflows): `resources.gpu`;
- `depends-on` as a mapping (hosted era): `workflows:` are runtime dependencies, `repo.include` the
  files and `variables:` the variables the job depends on;
- `ports: [8080, ...]` (early `docker` provider): that many published ports;
- `ssh: true` (0.7): accepted; no SSH server is started in the job (one-line warning);
- `provider: curl` with `url` and `output` (the built-in provider of 2022, unless `.dstack/providers.yaml`
  defines its own `curl`): a bash job that downloads `url` to `output` with the image's Python.

Warnings are returned, never printed: the CLI shows them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import field
from typing import Any

from dtrun.errors import SpecError
from dtrun.spec.errors import SpecWarning
from dtrun.spec.rules import INTERNAL
from dtrun.spec.yamlpos import Document, PathKey
from dtrun.structs import struct

#: Provider names of earlier dstack releases and the provider that has their meaning now.
PROVIDER_ALIASES = {"vscode": "code", "jupyterlab": "lab", "jupyter": "notebook"}


@struct
class Normalized:
    item: dict[str, Any]
    warnings: list[SpecWarning] = field(default_factory=list)
    errors: list[SpecError] = field(default_factory=list)


def normalize(item: Mapping[str, Any], doc: Document, path: PathKey, builtin: tuple[str, ...],
              custom: Collection[str] = ()) -> Normalized:
    """`item` (one workflow mapping as written) in today's form, with what had to be said about it.
    `custom` are the providers `.dstack/providers.yaml` defines (they win over a historical built-in)."""
    out = Normalized(dict(item))
    written = sorted(set(out.item) & set(INTERNAL))
    if written:  # the names the historical forms are rewritten into are not a syntax of their own
        out.errors.append(SpecError(f"unknown property '{written[0]}'", position=doc.key_position((*path, written[0])),
                                    hint="see `dtrun schema` for the properties of each provider"))
        return out
    _template(out, doc, path)
    _provider(out, doc, path, builtin)
    _top_level_gpu(out, doc, path)
    _depends_on(out, doc, path)
    _ports(out, doc, path)
    if out.item.get("provider") == "curl" and "curl" not in custom:
        _curl(out, doc, path)
    _literal_password(out, doc, path)
    if out.item.get("ssh") is True:
        out.warnings.append(SpecWarning(
            "`ssh: true` is accepted, but dtrun starts no SSH server in the job: open a shell in it with "
            "`docker exec -it <container> bash` (the container is named in `dtrun status`)",
            doc.key_position((*path, "ssh")), "ssh"))
    return out


def _literal_password(out: Normalized, doc: Document, path: PathKey) -> None:
    """A `registry_auth.password` written out works, but lives in the repository and so in every code
    snapshot dtrun stores: said once, with the way to keep it out."""
    auth = out.item.get("registry_auth")
    password = auth.get("password") if isinstance(auth, dict) else None
    if isinstance(password, str) and password and "${{" not in password:
        out.warnings.append(SpecWarning(
            "`registry_auth.password` is written in the file, so it is in the repository and in the code dtrun "
            "stores for every run: keep it in a secret (`dtrun secrets add NAME`) and write `${{ secrets.NAME }}`",
            doc.key_position((*path, "registry_auth", "password")), "registry_auth"))


def _template(out: Normalized, doc: Document, path: PathKey) -> None:
    if "template" not in out.item:
        return
    template = out.item.pop("template")
    if isinstance(template, str):
        if "provider" in out.item:
            out.errors.append(SpecError("'template' and 'provider' both name the provider",
                                        position=doc.key_position((*path, "template")), hint="keep 'provider'"))
        else:
            out.item["provider"] = template
    elif isinstance(template, dict):
        out.item = {**template, **out.item}
    else:
        out.errors.append(SpecError("'template' must be a provider name or a mapping of properties",
                                    position=doc.position((*path, "template")),
                                    hint="template:\n      provider: bash\n      commands: [...]"))


def _provider(out: Normalized, doc: Document, path: PathKey, builtin: tuple[str, ...]) -> None:
    provider = out.item.get("provider")
    where = doc.position((*path, "provider"))
    if isinstance(provider, dict):
        name, repo = provider.get("name"), provider.get("repo")
        unknown = sorted(set(provider) - {"name", "repo"})
        if unknown or not isinstance(name, str):
            out.errors.append(SpecError("a provider written as a mapping has `name` (and optionally `repo`)",
                                        position=where, hint="provider:\n      name: python"))
            return
        if repo:
            if name not in builtin and PROVIDER_ALIASES.get(name) not in builtin:
                out.errors.append(SpecError(
                    f"provider '{name}' of {repo} cannot be fetched: dtrun runs providers of this repository only",
                    position=where, hint=f"copy its definition (image and commands) into .dstack/providers.yaml "
                                         f"as `- name: {name}`, then write `provider: {name}`"))
                return
            out.warnings.append(SpecWarning(
                f"`provider.repo: {repo}` is not fetched: dtrun's own '{name}' provider runs this workflow",
                doc.position((*path, "provider", "repo")), "provider.repo"))
        provider = name
    if isinstance(provider, str) and "@" in provider:
        name, _, channel = provider.partition("@")
        out.warnings.append(SpecWarning(
            f"`provider: {provider}`: the '@{channel}' release channel is dstack's; dtrun's own '{name}' runs it",
            where, "provider"))
        provider = name
    if isinstance(provider, str) and provider in PROVIDER_ALIASES:
        provider = PROVIDER_ALIASES[provider]
    if provider is not None:
        out.item["provider"] = provider


def _top_level_gpu(out: Normalized, doc: Document, path: PathKey) -> None:
    if "gpu" not in out.item:
        return
    resources = out.item.get("resources")
    if resources is None:
        resources = {}
    if not isinstance(resources, dict):
        return  # the model reports the malformed `resources`
    if "gpu" in resources:
        out.errors.append(SpecError("'gpu' is given twice (also under 'resources')",
                                    position=doc.key_position((*path, "gpu")), hint="keep `resources.gpu`"))
        return
    out.item["resources"] = {**resources, "gpu": out.item.pop("gpu")}


def _depends_on(out: Normalized, doc: Document, path: PathKey) -> None:
    value = out.item.get("depends-on")
    if not isinstance(value, dict):
        return
    where = (*path, "depends-on")
    unknown = sorted(set(value) - {"workflows", "repo", "variables"})
    if unknown:
        out.errors.append(SpecError(f"unknown property 'depends-on.{unknown[0]}'",
                                    position=doc.key_position((*where, unknown[0])),
                                    hint="depends-on as a mapping has `workflows`, `repo` and `variables`"))
        return
    out.item["depends-on"] = value.get("workflows") or []
    repo = value.get("repo")
    if repo is not None:
        include = repo.get("include") if isinstance(repo, dict) else None
        if not isinstance(include, list) or set(repo) - {"include"}:
            out.errors.append(SpecError("'depends-on.repo' lists the files the workflow depends on",
                                        position=doc.position((*where, "repo")),
                                        hint="repo:\n        include:\n          - train.py"))
        else:
            out.item["repo_include"] = include
            out.warnings.append(SpecWarning(
                "`depends-on.repo.include` is recorded, but the job still sees and is keyed by the whole "
                "repository (a change elsewhere reruns it instead of reusing it)",
                doc.key_position((*where, "repo")), "depends-on.repo"))
    if "variables" in value:
        out.item["depends_variables"] = value["variables"] or []
        out.warnings.append(SpecWarning(
            "`depends-on.variables` is recorded, but the job is keyed by all of its variables (a change of "
            "another one reruns it instead of reusing it)", doc.key_position((*where, "variables")),
            "depends-on.variables"))


def _ports(out: Normalized, doc: Document, path: PathKey) -> None:
    ports = out.item.get("ports")
    if not isinstance(ports, list):
        return
    out.item["ports"] = len(ports)
    listed = ", ".join(str(p) for p in ports)
    out.warnings.append(SpecWarning(
        f"`ports: [{listed}]`: dtrun publishes {len(ports)} port(s) on loopback; the job listens on the numbers "
        "in $PORT_0..$PORT_N (not on the ones listed); `dtrun status` shows where to reach them",
        doc.key_position((*path, "ports")), "ports"))


#: Downloads `url` to `output` with the standard library of the image's Python (which trusts the CA
#: bundle the job gets through SSL_CERT_FILE): no curl needed in the image.
_FETCH = ("import os, sys, urllib.request; os.makedirs(os.path.dirname(sys.argv[2]) or '.', exist_ok=True); "
          "urllib.request.urlretrieve(sys.argv[1], sys.argv[2]); print('downloaded', sys.argv[1], '->', sys.argv[2])")


def _curl(out: Normalized, doc: Document, path: PathKey) -> None:
    """The `curl` provider of 2022: `url` downloaded to `output` (both required), then its artifacts saved."""
    import shlex

    url, output = out.item.pop("url", None), out.item.pop("output", None)
    if not isinstance(url, str) or not url or not isinstance(output, str) or not output:
        out.errors.append(SpecError("provider 'curl' needs `url` and `output`", position=doc.position(path),
                                    hint="url: https://example.com/input.txt\n    output: data/input.txt"))
        return
    out.item["provider"] = "bash"
    out.item["commands"] = [f"python -c {shlex.quote(_FETCH)} {shlex.quote(url)} {shlex.quote(output)}"]
