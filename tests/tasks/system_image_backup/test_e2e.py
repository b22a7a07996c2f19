"""``system_image_backup`` end to end with ``dag.test()``: moto (EC2), the results store and the
Slack-compatible server on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from tests.fixtures.e2e import load_dag, task_states

pytestmark = pytest.mark.e2e


def test_weekly_images_are_taken_and_an_untagged_ami_is_kept(e2e, boto_client):
    from sanvi_ops.tasks.system_image_backup.images import PURPOSE, PURPOSE_TAG

    env = e2e.connect(aws=True)
    ec2 = boto_client("ec2")
    tagged = [{"ResourceType": "instance", "Tags": [{"Key": "Backup", "Value": "weekly"}]}]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=tagged)[
        "Instances"
    ][0]["InstanceId"]
    untagged = ec2.create_image(InstanceId=instance, Name="golden-by-hand")["ImageId"]

    dr = load_dag("system_image_backup").test(logical_date=datetime.now(UTC))
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    with psycopg.connect(env["store_dsn"]) as conn:
        stored = dict(
            conn.execute(
                "SELECT check_name, status FROM check_results WHERE dag_id = 'system_image_backup'"
            ).fetchall()
        )
    assert stored == {f"system_image[{instance}].image": "ok", "system_images.retention": "ok"}, stored
    ours = ec2.describe_images(Owners=["self"], Filters=[{"Name": f"tag:{PURPOSE_TAG}", "Values": [PURPOSE]}])
    assert len(ours["Images"]) == 1
    assert untagged in {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
