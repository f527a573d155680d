"""pilotlight: pilot-light disaster recovery for AWS. Config -> providers -> components -> exports."""

import pulumi

from components import config, program

for key, value in program.run(config.load()).items():
    pulumi.export(key, value)
