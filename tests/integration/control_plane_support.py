"""Helpers shared by the control-plane integration tests: the official
`alibabacloud-mns-open20220119` SDK pointed at a Tidings server, and refusal checks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from alibabacloud_mns_open20220119.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config
from mns.mns_exception import MNSServerException

from tests.support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ServerProcess

REGION = "cn-hangzhou"
WAIT_SECONDS = 10


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def client_for(
    server: ServerProcess,
    algorithm: str | None = None,
    key_id: str = ACCESS_KEY_ID,
    secret: str = ACCESS_KEY_SECRET,
) -> Client:
    """The SDK pointed at Tidings: endpoint `host:port` (no scheme), protocol `http`."""
    config = Config(
        access_key_id=key_id,
        access_key_secret=secret,
        endpoint=urlsplit(server.mns_url).netloc,
        protocol="http",
        region_id=REGION,
    )
    if algorithm is not None:
        config.signature_algorithm = algorithm
    return Client(config)


def refusal(call: Callable[..., Any], *args: Any) -> ClientException:
    with pytest.raises(ClientException) as caught:
        call(*args)
    error = caught.value
    assert error.data["Success"] is False
    assert error.data["Code"] == error.code
    return error


def data_plane_error(call: Callable[..., Any], *args: Any) -> str:
    with pytest.raises(MNSServerException) as caught:
        call(*args)
    return str(caught.value.type)


def page_names(data: Any, field: str) -> list[str]:
    return [getattr(item, field) for item in data.page_data]
