"""The botstack policy pack: `pulumi preview --policy-pack policy` (docs/ci.md). The policies live in
botstack_policies.py, importable without the engine; this file only starts the pack."""
import sys
from pathlib import Path

# the policies reuse the program's price table and memory rule (infra/), one directory up
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from botstack_policies import POLICIES  # noqa: E402

PolicyPack(name="botstack", policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
