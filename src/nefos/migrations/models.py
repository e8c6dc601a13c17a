"""Every service's tables, imported so that migrations and tests see one metadata.

It lives beside the migrations, not in ``nefos.core``: it names every service, and
core imports none (``src/nefos/layers.toml``).
"""

from __future__ import annotations


def load_all() -> None:
    """Register every table on ``nefos.core.db.Base.metadata`` (importing a models module
    is what registers its tables)."""
    import nefos.compute.models
    import nefos.compute.vmapi_models
    import nefos.core.claims
    import nefos.identity.models
    import nefos.network.models
    import nefos.quotas.models
    import nefos.storage.models
    import nefos.volume.models  # noqa: F401
