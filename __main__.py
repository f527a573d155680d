"""pilotlight: pilot-light disaster recovery for AWS. Config -> providers -> components -> exports."""

import pulumi

from components import config, program
from components.failover import FailoverRefused
from components.wiring import StackWiringError

try:
    exports = program.run(config.load())
except (config.ConfigError, FailoverRefused, StackWiringError) as exc:
    # A refusal or a configuration error is the operator's to act on, not a bug: the Python language
    # host (pulumi-language-python-exec) logs a pulumi.RunError's message alone, and any other
    # exception as "Program failed with an unhandled exception" with its traceback.
    raise pulumi.RunError(str(exc)) from None

for key, value in exports.items():
    pulumi.export(key, value)
