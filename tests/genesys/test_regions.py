"""Turning GENESYS_REGION / GENESYS_API_URL into the API base URL."""

from __future__ import annotations

import pytest

from genesys.regions import REGION_HOSTS, RegionError, resolve_api_host


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us_east_1", "https://api.mypurecloud.com"),
        ("us-east-1", "https://api.mypurecloud.com"),
        ("US-EAST-1", "https://api.mypurecloud.com"),
        (" eu_west_1 ", "https://api.mypurecloud.ie"),
        ("ap-southeast-2", "https://api.mypurecloud.com.au"),
        ("us_west_2", "https://api.usw2.pure.cloud"),
        ("eusc_de_east_1", "https://api.edee1.eusc-pure.cloud"),
    ],
)
def test_region_names(region: str, expected: str) -> None:
    """SDK region names, with underscores or hyphens in any case, map to their API host."""
    assert resolve_api_host(region, None) == expected


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("mypurecloud.com", "https://api.mypurecloud.com"),
        ("mypurecloud.com.au", "https://api.mypurecloud.com.au"),
        ("usw2.pure.cloud", "https://api.usw2.pure.cloud"),
        ("api.usw2.pure.cloud", "https://api.usw2.pure.cloud"),
        ("login.mypurecloud.de", "https://api.mypurecloud.de"),
        ("apps.mypurecloud.ie", "https://api.mypurecloud.ie"),
        ("https://api.usw2.pure.cloud/", "https://api.usw2.pure.cloud"),
        ("MyPureCloud.JP", "https://api.mypurecloud.jp"),
    ],
)
def test_region_domains(region: str, expected: str) -> None:
    """Genesys Cloud domains, bare or with api./login./apps. or a scheme, map to the API host."""
    assert resolve_api_host(region, None) == expected


@pytest.mark.parametrize("region", [None, "", "   "])
def test_no_region_means_us_east_1(region: str | None) -> None:
    """Without a region the SDK's default region (us_east_1) is used."""
    assert resolve_api_host(region, None) == "https://api.mypurecloud.com"


@pytest.mark.parametrize(
    ("region", "api_url", "expected"),
    [
        ("eu_west_1", "http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        (None, "https://api.example.test", "https://api.example.test"),
        (
            "not a region",
            " https://gateway.example.test/genesys/ ",
            "https://gateway.example.test/genesys",
        ),
    ],
)
def test_api_url_override_wins(region: str | None, api_url: str, expected: str) -> None:
    """GENESYS_API_URL wins over GENESYS_REGION, even an invalid one, minus trailing slashes."""
    assert resolve_api_host(region, api_url) == expected


@pytest.mark.parametrize(
    "region",
    [
        "us_east_9",
        "mypurecloud",
        "localhost",
        "not a region",
        "https://mypurecloud.com/api/v2",
        "-bad.example.com",
        "api.",
    ],
)
def test_invalid_region_raises(region: str) -> None:
    """A region that is neither a region name nor a domain raises RegionError naming it."""
    with pytest.raises(RegionError, match="GENESYS_REGION"):
        resolve_api_host(region, None)


@pytest.mark.parametrize(
    "api_url", ["api.mypurecloud.com", "ftp://api.mypurecloud.com", "https://", "http:///path"]
)
def test_invalid_api_url_raises(api_url: str) -> None:
    """A GENESYS_API_URL that is not an http(s) URL with a host raises RegionError."""
    with pytest.raises(RegionError, match="GENESYS_API_URL"):
        resolve_api_host("us_east_1", api_url)


def test_region_table_equals_the_sdk() -> None:
    """REGION_HOSTS is exactly the SDK's PureCloudRegionHosts, so the two cannot drift."""
    from PureCloudPlatformClientV2 import PureCloudRegionHosts

    assert {member.name: member.value for member in PureCloudRegionHosts} == REGION_HOSTS
