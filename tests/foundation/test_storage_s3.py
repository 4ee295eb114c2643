"""Artifacts in S3-compatible object storage through django-storages, against a real S3 server
(moto's server mode, started on loopback by the test)."""

import io
import socket

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.files.storage import storages
from moto.server import ThreadedMotoServer

from backtests import artifacts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_storage(settings):
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials).create_bucket(
        Bucket="backfolio-artifacts"
    )
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "backfolio-artifacts",
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "location": "artifacts",
                "file_overwrite": False,
                "default_acl": None,
            },
        },
    }
    storages._storages.pop("default", None)
    yield endpoint
    storages._storages.pop("default", None)
    server.stop()


def test_equity_and_trades_round_trip_through_s3(s3_storage):
    equity = pd.Series(
        [100_000.0, 100_500.25, 99_800.5],
        index=pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-06"]),
    )
    trades = pd.DataFrame(
        [
            {
                "symbol": "SPY",
                "side": "long",
                "entry_date": "2020-01-02",
                "exit_date": "2020-01-06",
                "entry_price": 300.0,
                "exit_price": 299.4,
                "size": 10.0,
                "pnl": -6.0,
                "return_pct": -0.002,
                "exit_reason": "end_of_data",
                "fees": 0.0,
            }
        ]
    )

    equity_uri = artifacts.save_bytes(
        "runs/abc/1/equity.parquet", artifacts.equity_to_parquet(equity)
    )
    trades_uri = artifacts.save_bytes(
        "runs/abc/1/trades.parquet", artifacts.trades_to_parquet(trades)
    )

    bucket = boto3.resource(
        "s3",
        endpoint_url=s3_storage,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).Bucket("backfolio-artifacts")
    keys = sorted(item.key for item in bucket.objects.all())
    assert keys == ["artifacts/runs/abc/1/equity.parquet", "artifacts/runs/abc/1/trades.parquet"]

    read_back = artifacts.read_equity(equity_uri)
    assert read_back.tolist() == equity.tolist()
    assert artifacts.read_trades(trades_uri).to_dict("records") == trades.to_dict("records")

    # A Parquet download streams the stored bytes unchanged: the file parses with a date index.
    table = pq.read_table(io.BytesIO(artifacts.read_bytes(equity_uri))).to_pandas()
    assert list(table.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-06"]


def test_a_missing_s3_artifact_is_reported_as_missing(s3_storage):
    with pytest.raises(artifacts.ArtifactMissing):
        artifacts.read_bytes("runs/nothing-here/1/equity.parquet")


def test_health_checks_s3_storage_for_real(s3_storage, client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["storage"]["ok"] is True
