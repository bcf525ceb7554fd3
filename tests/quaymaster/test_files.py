"""Files on object storage: ``QUAYMASTER_FILES_URL=s3://…`` puts ``ctx.files`` and the reports
jobs write in an S3 bucket (django-storages), here moto's S3 server that
``platform/services`` starts (the tests that use it are ``e2e``: the PostgreSQL pass runs
them); unset, they stay in the local folder."""

from __future__ import annotations

import csv
import io
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

import jobs.demo
from quaymaster.config import files_storage
from tests.quaymaster.test_settings import load_settings
from tests.services import service_env
from workers.context import Files, Records
from zstorage.demo import install_demo_tables


@dataclass
class Bucket:
    name: str
    prefix: str
    client: Any

    def objects(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        return sorted(item["Key"] for item in listed)

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body


@pytest.fixture
def bucket(settings: Any) -> Iterator[Bucket]:
    """A fresh bucket on the S3 server, and the default storage pointed at it through
    ``QUAYMASTER_FILES_URL``'s parser (credentials from AWS_ACCESS_KEY_ID/SECRET)."""
    endpoint = service_env("QUAYMASTER_S3_ENDPOINT_URL")
    name = f"qm-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": files_storage(
            f"s3://{name}/quaymaster?endpoint_url={endpoint}&region_name=us-east-1"
        ),
    }
    found = Bucket(name, "quaymaster", client)
    try:
        yield found
    finally:
        for key in found.objects():
            client.delete_object(Bucket=name, Key=key)
        client.delete_bucket(Bucket=name)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: bytes = answer.read()
        return body


@pytest.mark.e2e
def test_ctx_files_saves_in_the_bucket_and_gives_a_url_that_serves_the_file(
    bucket: Bucket,
) -> None:
    files = Files()  # ctx.files

    url = files.save("reports/out.txt", "hello")
    again = files.save("reports/out.txt", b"again")

    assert bucket.read("quaymaster/reports/out.txt") == b"hello"
    assert len(bucket.objects()) == 2, "a name in use gets a new one, as on the local folder"
    assert again != url
    assert fetch(url) == b"hello"
    assert fetch(again) == b"again"


@pytest.mark.e2e
@pytest.mark.django_db
def test_a_report_job_writes_its_csv_export_to_the_bucket(bucket: Bucket) -> None:
    install_demo_tables()

    @dataclass
    class JobContext:  # what the city report uses of a job's context
        records: Records
        files: Files

        def progress(self, *_: Any) -> None:
            pass

    report = jobs.demo.city_report({"city": "Lisbon"}, JobContext(Records(), Files()))

    assert bucket.objects() == ["quaymaster/reports/orders-lisbon.csv"]
    rows = list(csv.reader(io.StringIO(fetch(report["file"]).decode())))
    assert rows[0] == ["number", "customer", "status", "total", "ordered_on"]
    assert len(rows) - 1 == report["orders"] > 0


def test_the_local_folder_stays_the_default(settings: Any, tmp_path: Path) -> None:
    assert django_settings.STORAGES["default"] == {
        "BACKEND": "django.core.files.storage.FileSystemStorage"
    }
    assert files_storage("  ") == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    settings.MEDIA_ROOT = str(tmp_path)
    assert Files().save("a.txt", "local") == "/media/a.txt"
    assert (tmp_path / "a.txt").read_text() == "local"


def test_a_files_url_gives_the_bucket_prefix_credentials_and_options() -> None:
    storage = files_storage(
        "s3://AKIA%2BKEY:se%2Fcret@reports.example/platform/files/?endpoint_url=https://s3.example"
        "&region_name=eu-west-1&addressing_style=path&querystring_expire=600"
        "&querystring_auth=false&file_overwrite=true&custom_domain=files.example"
    )

    assert storage == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "reports.example",
            "location": "platform/files",
            "access_key": "AKIA+KEY",
            "secret_key": "se/cret",
            "endpoint_url": "https://s3.example",
            "region_name": "eu-west-1",
            "addressing_style": "path",
            "querystring_expire": 600,
            "querystring_auth": False,
            "file_overwrite": True,
            "custom_domain": "files.example",
        },
    }
    plain = files_storage("s3://bucket")["OPTIONS"]
    assert plain == {"bucket_name": "bucket", "location": "", "file_overwrite": False}


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("/srv/files", "must start with s3://"),
        ("https://bucket.s3.amazonaws.com", "must start with s3://"),
        ("s3://", "must name an S3 bucket"),
        ("s3://Not_A_Bucket", "must name an S3 bucket"),
        ("s3://bucket:9000/x", "must name an S3 bucket"),
        ("s3://key@bucket", "both of them"),
        ("s3://bucket?endpoint=http://x", "unknown option 'endpoint'"),
        ("s3://bucket?region_name=a&region_name=b", "'region_name' twice"),
        ("s3://bucket?querystring_auth=maybe", "give true or false"),
        ("s3://bucket?querystring_expire=soon", "give a number of seconds"),
        ("s3://bucket?endpoint_url=127.0.0.1:9000", "give http(s)://host[:port]"),
        ("s3://bucket?addressing_style=dns", "give auto, path or virtual"),
    ],
)
def test_a_bad_files_url_is_refused_naming_the_variable(value: str, said: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="QUAYMASTER_FILES_URL") as refused:
        files_storage(value)
    assert said in str(refused.value)


def test_a_bad_files_url_stops_the_start_without_showing_the_secret(tmp_path: Path) -> None:
    result = load_settings(tmp_path, QUAYMASTER_FILES_URL="s3://key:TopSecret@bucket?nope=1")
    assert result.returncode != 0
    assert "QUAYMASTER_FILES_URL has an unknown option 'nope'" in result.stderr
    assert "TopSecret" not in result.stderr
