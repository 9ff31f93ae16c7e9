"""A service that handles personal data refuses to start without a whole, valid keyring."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError

from casetrail.runtime.keyring import new_master_key
from casetrail.runtime.settings import ServiceSettings

BASE = {
    "service_name": "test",
    "database_url": "postgresql://u:p@127.0.0.1:5432/db",
    "auth_shared_secret": "s" * 40,
}
KEYRING_URL = "postgresql://u:p@127.0.0.1:5432/casetrail_keyring"


def test_a_keyring_needs_both_its_database_and_its_master_key(tmp_path):
    master = tmp_path / "master.key"
    master.write_text(new_master_key())
    with pytest.raises(ValidationError, match="configure both"):
        ServiceSettings(**BASE, keyring_database_url=KEYRING_URL)
    with pytest.raises(ValidationError, match="configure both"):
        ServiceSettings(**BASE, keyring_master_key_file=master)
    settings = ServiceSettings(
        **BASE, keyring_database_url=KEYRING_URL, keyring_master_key_file=master
    )
    assert settings.keyring().master_key == base64.b64decode(master.read_text())


@pytest.mark.parametrize("content", ["not base64!", base64.b64encode(os.urandom(16)).decode()])
def test_a_master_key_that_is_not_32_bytes_of_base64_is_refused_at_start(tmp_path, content):
    master = tmp_path / "master.key"
    master.write_text(content)
    with pytest.raises(ValidationError, match="master key"):
        ServiceSettings(**BASE, keyring_database_url=KEYRING_URL, keyring_master_key_file=master)


def test_without_a_keyring_a_service_that_seals_personal_data_will_not_start():
    with pytest.raises(ValueError, match="handles personal data"):
        ServiceSettings(**BASE).keyring()
