"""DataTorch-style flows: jobs of steps that call reusable actions, each step its own container.

The stages mirror the workflow dialect: `loader` (files -> typed models with positions), `actions`
(references -> action folders, manifests or images), `expressions` (`${{ ... }}`), `engine` (runs a
flow on the Docker backend and records it in the store), `triggers` (schedule, webhook, manual).
"""
