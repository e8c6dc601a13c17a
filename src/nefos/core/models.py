"""Every service's tables, imported so that migrations and tests see one metadata."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "nefos.core.claims",
    "nefos.identity.models",
    "nefos.quotas.models",
    "nefos.storage.models",
    "nefos.compute.models",
    "nefos.compute.vmapi_models",
)


def load_all() -> None:
    for module in MODEL_MODULES:
        importlib.import_module(module)
