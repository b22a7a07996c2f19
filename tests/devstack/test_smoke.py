"""The servers the fixtures start are real and reachable on 127.0.0.1 only."""

from __future__ import annotations

import psycopg
import pytest
import redis

pytestmark = pytest.mark.integration


def test_postgres_is_real_and_password_protected(pg, make_db):
    dsn = make_db("smoke")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SELECT current_setting('server_version_num')::int").fetchone()[0] >= 170000
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg.dsn(password="wrong")).close()


def test_redis_is_real_and_password_protected(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping() is True
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=redis_server.port, password="wrong").ping()


def test_moto_serves_s3(boto_client):
    s3 = boto_client("s3")
    s3.create_bucket(Bucket="sanvi-smoke")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["sanvi-smoke"]
