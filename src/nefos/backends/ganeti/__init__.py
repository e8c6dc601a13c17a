"""Google Ganeti as nefos's compute engine: the RAPI client and the backend on it
(``cluster``), and the event daemon that runs on each cluster's master (``eventd``)."""

from nefos.backends.ganeti.cluster import GanetiCluster
from nefos.backends.ganeti.rapi import RapiClient, pem_certificates

__all__ = ["GanetiCluster", "RapiClient", "pem_certificates"]
