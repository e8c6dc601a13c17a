"""Glance v2 at ``/image/v2``, as python-openstackclient, openstacksdk and tempest call it.

A v2 image is the same object a v1 (Plankton) client sees: a storage file with metadata
in the ``plankton`` domain (:mod:`nefos.images.service`). ``POST /v2/images`` makes a
*queued* image, an empty placeholder file ``images/<id>`` in the owner's account;
``PUT .../file`` streams the data into it as the file's new version, so the data is
readable through the object store too. Visibility is the file's sharing: ``public``
and ``community`` put ``*`` among its readers, members are named readers.

One router joins the modules of the API, one per concern, each route parsing the
request, making one service call and rendering the answer:

- :mod:`nefos.images.api_v2_common`: paths, the fault format, rendering, schema checks;
- :mod:`nefos.images.api_v2_images`: create, show, change (JSON patch), delete, tags;
- :mod:`nefos.images.api_v2_listing`: the listing, filtered and paged by the database;
- :mod:`nefos.images.api_v2_file`: the image data, up and down;
- :mod:`nefos.images.api_v2_members`: members and their answers;
- :mod:`nefos.images.api_v2_schemas`: schemas and discovery.

The image actions (:mod:`nefos.images.api_v2_actions`) and metadata definitions
(:mod:`nefos.images.api_metadefs`) have routers of their own at the same prefix.
"""

from __future__ import annotations

from fastapi import APIRouter

from nefos.images import (
    api_v2_file,
    api_v2_images,
    api_v2_listing,
    api_v2_members,
    api_v2_schemas,
)
from nefos.images.api_v2_common import PREFIX, glance_fault

__all__ = ["PREFIX", "glance_fault", "router"]

router = APIRouter()
# The listing before the image routes, as before: /images is no /images/{image_id}.
for part in (api_v2_listing, api_v2_images, api_v2_file, api_v2_members, api_v2_schemas):
    router.include_router(part.router)
