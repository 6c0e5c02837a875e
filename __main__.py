"""botstack: one personal Telegram bot on one DigitalOcean droplet. The program is in infra/."""
from pathlib import Path

import pulumi

from infra.config import ConfigError
from infra.program import build

try:
    outputs = build(pulumi.get_stack(), Path(__file__).resolve().parent)
except ConfigError as error:
    # RunError ends the program with this one line instead of a traceback
    raise pulumi.RunError(str(error)) from None

for key, value in outputs.items():
    pulumi.export(key, value)
