"""Every spec error, with its exact message and position, from one fixture project per kind of mistake.

Positions are `file:line:col` relative to the fixture project; the hint follows on its own line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.spec.helpers import errors_of, fixture, project

EXPECTED: dict[str, list[str]] = {
    'bad_deps': [
        (".dtrun/workflows.yaml:6:9: 'deps[0]': 'download:' names no tag after ':'; write "
         'download:TAG or just download'),
        (".dtrun/workflows.yaml:7:9: 'deps[1]': 'owner' is not a repository; another repository "
         'is written owner/repo, as in owner/repo/workflow or :owner/repo/tag'),
        (".dtrun/workflows.yaml:8:9: 'deps[2]': a dependency cannot be empty; write :tag, "
         'workflow, workflow:tag or owner/repo/workflow'),
        (".dtrun/workflows.yaml:9:27: unknown property 'path'\n  hint: valid properties: repo, "
         'tag, workflow'),
        (".dtrun/workflows.yaml:10:9: 'deps[4]': 'bad name' is not a valid workflow name "
         "(letters, digits, '.', '-', '_')"),
    ],
    'bad_types': [
        ".dtrun/workflows.yaml:5:12: 'ports': expected a whole number, got 'many'",
        (".dtrun/workflows.yaml:6:21: 'python_install': expected one of 'auto', 'system', 'conda', 'uv', "
         "got 'pip'"),
        ".dtrun/workflows.yaml:7:10: 'env': env entries are NAME=value or NAME",
        (".dtrun/workflows.yaml:9:15: 'resources.memory': 'lots' is not a size; expected a number "
         'with a unit such as 16GB or 512MiB'),
        (".dtrun/workflows.yaml:10:12: 'resources.gpu': expected a GPU count or {name, count, "
         'memory}'),
        ".dtrun/workflows.yaml:11:12: 'resources.cpu': must be more than 0, got 0",
        (".dtrun/workflows.yaml:12:11: 'name': 'my train' is not a valid workflow name: use "
         "letters, digits, '.', '-' and '_' (no spaces, ':' or '/', which dependencies use)"),
        (".dtrun/workflows.yaml:18:14: 'secrets': 'API-KEY' is not an environment variable name "
         '(letters, digits and _, not first a digit)'),
        ".dtrun/workflows.yaml:19:17: 'artifacts[0].path': must not be empty",
    ],
    'cycle': [
        ('.dtrun/workflows.yaml:13:18: depends-on has a cycle: a -> b -> c -> a\n  hint: remove '
         'one of these dependencies'),
    ],
    'duplicate_name': [
        (".dstack/workflows.yaml:2:11: workflow 'train' is defined twice (first at "
         '.dtrun/workflows.yaml:2:5)\n  hint: workflow names must be unique across all workflow '
         'files'),
    ],
    'missing_required': [
        (".dtrun/workflows.yaml:2:5: provider 'python' needs 'file'\n  hint: add `file: train.py` "
         '(the script to run, relative to the project folder)'),
        (".dtrun/workflows.yaml:4:5: provider 'docker' needs 'image'\n  hint: add `image: "
         '<name>:<tag>` (the image to run as it is)'),
        (".dtrun/workflows.yaml:6:5: provider 'bash' needs 'commands'\n  hint: add `commands:` "
         'with the shell commands to run'),
        (".dtrun/workflows.yaml:8:5: missing required property 'provider'\n  hint: providers: "
         'bash, python, docker, torchrun, lab, notebook, code'),
    ],
    'older_names': [
        ".dstack/workflows.yaml:2:5: 'environment' and 'env' are the same property; keep 'env'",
        (".dstack/workflows.yaml:7:5: 'python_script' is the script with its arguments; it cannot "
         "be combined with 'file' or 'args'"),
        ".dstack/workflows.yaml:11:5: 'nodes' is given twice (also under 'resources')",
    ],
    'property_of_other_provider': [
        (".dtrun/workflows.yaml:5:5: property 'nodes' does not apply to provider 'bash'\n  hint: "
         "'nodes' is a property of: torchrun; valid properties for bash: artifacts, before_run, cache, "
         'commands, cuda, depends-on, deps, env, environment, help, name, ports, provider, '
         'python, python_install, requirements, resources, secrets, ssh, version, working_dir'),
    ],
    'templates': [
        (".dtrun/workflows.yaml:5:38: unknown variable 'batchsize' in ${{ batchsize }}\n  hint: "
         "did you mean 'batch-size'? variables of this workflow (from variables.yaml): "
         'batch-size; also run.args, run.name, secrets.NAME'),
        (".dtrun/workflows.yaml:6:14: unknown '${{ run.nam }}'\n  hint: did you mean 'run.name'? "
         'run.args and run.name are defined'),
        (".dtrun/workflows.yaml:9:14: unknown variable 'nope' in ${{ nope }}\n  hint: variables of "
         'this workflow (from variables.yaml): batch-size; also run.args, run.name, secrets.NAME'),
        (".dtrun/workflows.yaml:10:15: unclosed '${{' (a template is written ${{ name }})\n  hint: "
         "close it with '}}'"),
        (".dtrun/workflows.yaml:12:12: 'secrets.bad-name' is not a secret name\n  hint: secret "
         'names are letters, digits and _, as in ${{ secrets.WANDB_API_KEY }}'),
        (".dtrun/workflows.yaml:13:11: 'name' cannot use ${{ ... }}\n  hint: write the name "
         'literally'),
        (".dtrun/workflows.yaml:13:11: 'name': '${{ batch-size }}' is not a valid workflow name: "
         "use letters, digits, '.', '-' and '_' (no spaces, ':' or '/', which dependencies use)"),
    ],
    'top_level': [
        (".dstack/workflows.yaml:5:10: unknown top-level property 'version'\n  hint: the only "
         "top-level property is 'workflows'"),
        (".dtrun/workflows.yaml:1:1: expected a mapping with a 'workflows' list at the top\n  "
         'hint: the file starts with `workflows:` followed by a list of workflows'),
        ('.dtrun/workflows/items.yaml:2:5: each workflow must be a mapping\n  hint: start each '
         'workflow with `- name: ...`'),
        (".dtrun/workflows/items.yaml:3:5: missing required property 'name'\n  hint: each workflow "
         'starts with `- name: ...` (the name you give to `dtrun run`)'),
        (".dtrun/workflows/list.yaml:2:3: 'workflows' must be a list\n  hint: write each workflow "
         'as a list item starting with `- name: ...`'),
    ],
    'undefined_dep': [
        (".dtrun/workflows.yaml:9:9: workflow 'train' depends on 'downlaod', which is not "
         "defined\n  hint: did you mean 'download'? workflows: download, train"),
    ],
    'unknown_property': [
        (".dtrun/workflows.yaml:4:5: unknown property 'comands'\n  hint: did you mean 'commands'? "
         'valid properties for bash: artifacts, before_run, cache, commands, cuda, depends-on, deps, env, '
         'environment, help, name, ports, provider, python, python_install, requirements, '
         'resources, secrets, ssh, version, working_dir'),
    ],
    'unknown_provider': [
        (".dtrun/workflows.yaml:3:15: unknown provider 'bsh'\n  hint: did you mean 'bash'? "
         'providers: bash, python, docker, torchrun, lab, notebook, code'),
    ],
    'variables_file': [
        (".dstack/variables.yaml:3:5: variable 'epochs' of workflow 'train' is defined twice "
         '(first at .dtrun/variables.yaml:7:5)\n  hint: keep one definition'),
        (".dtrun/variables.yaml:2:3: variables.yaml sets variables of 'trian', which is not a "
         "workflow\n  hint: did you mean 'train'? workflows: train"),
        (".dtrun/variables.yaml:5:12: variable 'sizes' must have a single value (a string or "
         'number)\n  hint: quote it to pass text: "a, b"'),
        (".dtrun/variables.yaml:6:5: 'bad name' is not a valid variable name\n  hint: letters, "
         "digits, '-' and '_', starting with a letter or '_'"),
    ],
    'yaml_syntax': [
        (".dtrun/workflows.yaml:5:1: YAML syntax error: expected ',' or ']', but got '<stream "
         "end>'\n  hint: check the indentation and quoting on this line and the one before it"),
    ],
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_error_messages(case: str) -> None:
    assert errors_of(fixture(f"errors/{case}")) == EXPECTED[case]


def test_a_control_character_is_reported_where_it_is(tmp_path: Path) -> None:
    proj = project(tmp_path, {".dtrun/workflows.yaml": "workflows:\n  - name: a\x01b\n"})
    assert errors_of(proj) == [".dtrun/workflows.yaml:2:12: YAML does not allow the character #x0001 here\n"
                               "  hint: remove it, or write it as an escape (\\x..) inside double quotes"]
