"""`make run`'s demo AWS data (devstack.aws_seed) is enough for both backup jobs to be green:
the file bucket has documents and the backup bucket (SSE-KMS by default, with the database
lifecycle rule) takes their copy; an instance carries the weekly image tag."""

from __future__ import annotations

import datetime as dt


def test_both_backup_jobs_are_green_on_the_demo_data(aws_endpoint, boto_client):
    from devstack.aws_seed import DEMO_FILES, seed_demo, seed_story
    from sanvi_ops.core.backups import ensure_lifecycle
    from sanvi_ops.core.config import load_config
    from sanvi_ops.tasks.file_storage_backup.files import LIFECYCLE_RULE_ID, copy_bucket, verify_copy
    from sanvi_ops.tasks.system_image_backup.images import ImageSettings, prune_images, take_images

    cfg = load_config()
    seed_demo(aws_endpoint, "us-east-1", governance=False)
    seed_story(aws_endpoint, "us-east-1", cfg)
    s3, ec2 = boto_client("s3"), boto_client("ec2")
    # What seed_governance does to the backup bucket (the rest of it is slow and beside the point).
    default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": cfg.database_backups.kms_key_alias}
    s3.put_bucket_encryption(
        Bucket=cfg.database_backups.bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": default}]},
    )
    f = cfg.file_storage_backups
    source = cfg.tasks.system_health_check.settings.buckets["files"]
    bucket = cfg.database_backups.bucket
    today = dt.datetime.now(dt.UTC).date()

    rule = ensure_lifecycle(
        s3,
        bucket,
        f.prefix,
        glacier_after_days=f.glacier_after_days,
        retention_days=cfg.backups.file_storage.retention_days,
        rule_id=LIFECYCLE_RULE_ID,
    )
    assert rule.status == "ok", rule
    outcome = copy_bucket(s3, source, bucket, f.prefix, today)
    assert len(outcome.copied) == len(DEMO_FILES) and not outcome.failed
    verified = verify_copy(
        s3,
        source,
        bucket,
        f.prefix,
        today,
        sample_objects=f.sample_objects,
        sample_max_bytes=f.sample_max_mb * 10**6,
    )
    assert {r.status for r in verified} == {"ok"}, verified

    s = cfg.system_image_backups
    settings = ImageSettings(
        s.instance_tag_key, s.instance_tag_value, s.name_prefix, poll_seconds=1, wait_seconds=30
    )
    taken = take_images(ec2, settings, day=today)
    assert [r.status for r in taken] == ["ok"], taken
    pruned = prune_images(
        ec2, now=dt.datetime.now(dt.UTC), retention_days=cfg.backups.system_images.retention_days
    )
    assert pruned.status == "ok", pruned
