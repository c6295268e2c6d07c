"""Turn `GENESYS_REGION` / `GENESYS_API_URL` into the API base URL the SDK is given.

The region table mirrors the SDK's `PureCloudRegionHosts` (a test keeps them equal); it is
copied rather than imported because importing any part of the SDK costs about two seconds,
which configuration checks at start-up should not pay.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

REGION_HOSTS: dict[str, str] = {
    "us_east_1": "https://api.mypurecloud.com",
    "eu_west_1": "https://api.mypurecloud.ie",
    "ap_southeast_2": "https://api.mypurecloud.com.au",
    "ap_northeast_1": "https://api.mypurecloud.jp",
    "eu_central_1": "https://api.mypurecloud.de",
    "us_west_2": "https://api.usw2.pure.cloud",
    "ca_central_1": "https://api.cac1.pure.cloud",
    "ap_northeast_2": "https://api.apne2.pure.cloud",
    "eu_west_2": "https://api.euw2.pure.cloud",
    "ap_south_1": "https://api.aps1.pure.cloud",
    "us_east_2": "https://api.use2.us-gov-pure.cloud",
    "sa_east_1": "https://api.sae1.pure.cloud",
    "me_central_1": "https://api.mec1.pure.cloud",
    "ap_northeast_3": "https://api.apne3.pure.cloud",
    "eu_central_2": "https://api.euc2.pure.cloud",
    "mx_central_1": "https://api.mxc1.pure.cloud",
    "ap_southeast_1": "https://api.apse1.pure.cloud",
    "eusc_de_east_1": "https://api.edee1.eusc-pure.cloud",
}

_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class RegionError(ValueError):
    """The region or API URL cannot be turned into a Genesys Cloud API base URL."""


def resolve_api_host(region: str | None, api_url: str | None) -> str:
    """Return the API base URL, such as `https://api.mypurecloud.com`.

    `api_url` wins outright. `region` is either an SDK region name (`us_east_1`, also written
    `us-east-1`) or a Genesys Cloud domain (`mypurecloud.com`, `usw2.pure.cloud`,
    `api.usw2.pure.cloud`).
    """
    if api_url:
        parts = urlsplit(api_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegionError(f"GENESYS_API_URL must be an http(s) URL, got {api_url!r}")
        return api_url.strip().rstrip("/")
    if not region or not region.strip():
        return REGION_HOSTS["us_east_1"]
    name = region.strip().lower()
    by_name = REGION_HOSTS.get(name.replace("-", "_"))
    if by_name:
        return by_name
    domain = name.removeprefix("https://").removeprefix("http://").rstrip("/")
    domain = domain.removeprefix("api.").removeprefix("login.").removeprefix("apps.")
    if not _DOMAIN.match(domain):
        raise RegionError(
            f"GENESYS_REGION {region!r} is neither a region name (such as us_east_1) "
            "nor a Genesys Cloud domain (such as mypurecloud.com or usw2.pure.cloud)"
        )
    return f"https://api.{domain}"
