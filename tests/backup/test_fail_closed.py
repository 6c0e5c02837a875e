"""Whatever is planted in the bucket or the backup directory by someone without the passphrase, the
outcome is a refusal that is alerted and recorded: never an escaped exception, never a restore."""
from __future__ import annotations

import json

from .conftest import ADMINS, backup_runs, closed_port_url, s3_client


def alerts(botapi):
    return [m["text"] for m in botapi.sent_messages(ADMINS[0])]


def objects(endpoint, bucket):
    resp = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in resp.get("Contents", []))


# -- the backlog: a local manifest is no more trusted than the bucket --------------------------------
def test_a_tampered_local_manifest_is_not_uploaded_and_the_rest_of_the_backlog_is(make_tool, clock, s3_server,
                                                                                   bucket, botapi):
    down = make_tool(endpoint=closed_port_url())
    tampered = down.run()
    clock.advance(hours=1)
    kept = down.run()
    path = f"{down.dir}/{tampered.name}.manifest.json"
    with open(path) as f:
        manifest = json.load(f)
    del manifest["key"]  # what the MAC covers: the local copy is no longer provably ours
    with open(path, "w") as f:
        json.dump(manifest, f)
    clock.advance(hours=6)
    result = make_tool().run()
    assert result.uploaded and result.backlog_uploaded == [kept.name]
    assert not any(tampered.name in k for k in objects(s3_server, bucket))
    assert any("upload FAILED" in t and tampered.name in t and "refused" in t for t in alerts(botapi))
    assert ("upload", False) in [(r["kind"], r["ok"]) for r in backup_runs(down.cfg.database_url)]
