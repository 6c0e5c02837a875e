"""A stand-in `pulumi` for the CI scripts' tests: records its arguments (one JSON line per call in
$FAKE_PULUMI_LOG) and does to Pulumi.<stack>.yaml what the real `pulumi config set --path K[0] V` and
`pulumi config rm K` do, and answers `pulumi config get K` as the real one does: secrets (from
$FAKE_PULUMI_SECRETS, a JSON object, as if decrypted) in plain text, lists as JSON, a missing key
with exit 255; `up` exits with $FAKE_PULUMI_UP_EXIT (default 0)."""
import json
import os
import sys
from pathlib import Path

import yaml


def stack_file(args):
    return Path.cwd() / f"Pulumi.{args[args.index('--stack') + 1]}.yaml"


def main(args):
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        log.write(json.dumps(args) + "\n")
    if args[:2] == ["config", "set"]:
        path = stack_file(args)
        doc = yaml.safe_load(path.read_text()) or {}
        key = args[args.index("--path") + 1]
        value = [a for a in args[2:] if not a.startswith("-") and a not in (key, args[args.index("--stack") + 1])][0]
        name, _, index = key.partition("[")
        assert index == "0]", f"fake pulumi: only [0] paths are emulated, not {key}"
        doc.setdefault("config", {})[name] = [value]
        path.write_text(yaml.safe_dump(doc))
    elif args[:2] == ["config", "rm"]:
        path = stack_file(args)
        doc = yaml.safe_load(path.read_text()) or {}
        name = [a for a in args[2:] if not a.startswith("-") and a != args[args.index("--stack") + 1]][0]
        doc.get("config", {}).pop(name, None)
        path.write_text(yaml.safe_dump(doc))
    elif args[:2] == ["config", "get"]:
        key = args[-1]
        secrets = json.loads(os.environ.get("FAKE_PULUMI_SECRETS", "{}"))
        config = (yaml.safe_load(stack_file(args).read_text()) or {}).get("config") or {}
        if key in secrets:
            print(secrets[key])
        elif key in config:
            value = config[key]
            print(json.dumps(value) if isinstance(value, (list, dict)) else value)
        else:
            print(f"error: configuration key '{key}' not found", file=sys.stderr)
            return 255
    elif args[:1] == ["up"]:
        return int(os.environ.get("FAKE_PULUMI_UP_EXIT", "0"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
