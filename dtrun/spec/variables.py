"""`variables.yaml`: per-workflow variables with their defaults (seed 002).

```yaml
variables:
  train:
    batch-size: 64
    lr: 1.0
  global:        # shared by every workflow (the hosted dstack.ai of early 2022)
    model: 124M
```

Values keep the text they were written as (`lr: 1.0` is "1.0", `gamma: 0.70` is "0.70"): they become
environment variables and `${{ name }}` substitutions, which are text.
"""

from __future__ import annotations

import re
from pathlib import Path

from dtrun.errors import Position, SpecError
from dtrun.spec.project import Project
from dtrun.spec.templating import plain
from dtrun.spec.yamlpos import documents, side_files
from dtrun.structs import struct

#: The section of variables.yaml shared by every workflow (hosted dstack.ai, early 2022).
GLOBAL = "global"
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@struct(frozen=True)
class Variable:
    """One declared variable; `workflow_position` is where its workflow's key is in variables.yaml."""

    name: str
    default: str
    position: Position
    workflow_position: Position


def variable_files(project: Project) -> list[Path]:
    return side_files(project.spec_dirs, "variables")


def load_variables(files: list[Path]) -> tuple[dict[str, dict[str, Variable]], list[SpecError]]:
    """Every workflow's declared variables, and every error found in the files (all of them)."""
    out: dict[str, dict[str, Variable]] = {}
    errors: list[SpecError] = []
    for doc in documents(files, errors):
        data = doc.data
        if not isinstance(data, dict) or not isinstance(data.get("variables", {}), (dict, type(None))):
            errors.append(SpecError("expected `variables:` with a mapping of workflow name -> variables",
                                    position=doc.position(()),
                                    hint="variables:\n    train:\n      batch-size: 64"))
            continue
        for key in data:
            if key != "variables":
                errors.append(SpecError(f"unknown top-level property '{key}'", position=doc.position((key,)),
                                        hint="the only top-level property of variables.yaml is 'variables'"))
        for workflow, values in (data.get("variables") or {}).items():
            where = ("variables", workflow)
            if values is None:
                continue
            if not isinstance(values, dict):
                errors.append(SpecError(f"the variables of '{workflow}' must be a mapping of name: default",
                                        position=doc.position(where), hint="for example `batch-size: 64`"))
                continue
            declared = out.setdefault(workflow, {})
            for name, value in values.items():
                position = doc.key_position((*where, name))
                if not VARIABLE_NAME.match(name):
                    errors.append(SpecError(f"'{name}' is not a valid variable name", position=position,
                                            hint="letters, digits, '-' and '_', starting with a letter or '_'"))
                elif isinstance(value, (dict, list)):
                    errors.append(SpecError(f"variable '{name}' must have a single value (a string or number)",
                                            position=doc.position((*where, name)),
                                            hint="quote it to pass text: \"a, b\""))
                elif name in declared:
                    errors.append(SpecError(f"variable '{name}' of workflow '{workflow}' is defined twice "
                                            f"(first at {declared[name].position})", position=position,
                                            hint="keep one definition"))
                else:
                    declared[name] = Variable(name, plain(value), position, doc.key_position(where))
    return out, errors
