#!/bin/bash
$directives
# opus_min job $job_id, rendered from opus_min/slurm/batch_template.sh. Only the options above
# and the paths below come from the controller; job parameter values never appear in this file:
# runner.sh reads them from .opus/environment (NUL-separated) into the service script's
# environment.
exec /bin/bash $runner $meta
