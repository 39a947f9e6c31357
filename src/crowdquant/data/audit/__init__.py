"""The leakage audit: how much do the published files give away?

A Kerckhoffs attacker knows the pipeline and the feature definitions, not the keys, and
holds the public price panel. On a few sampled published eras the audit runs:

* L1 linkage (`linkage`): follow stocks from one era to the next by their bin vectors;
* L2 re-identification (`reidentify`): match an era's rows to public tickers, with the
  feature ↔ signal correspondence (a) given, (b) estimated without ground truth —
  the build gate is (b)'s single-era top-1 rate;
* L3 semantics (`semantics`): which public signal each released feature stands for;
* L4 dating (`dating`): place eras on the public calendar;
* L6 side channels (`side_channels`): row counts, ids, row order, NaN, leaked strings;
* the frontier (`frontier`): the same eras re-encoded under other anonymisation settings;

next to the example model's validation CORR (utility). `run_audit` returns an
`AuditReport` (JSON, Markdown, plot).
"""

from crowdquant.data.audit.inputs import AuditInput
from crowdquant.data.audit.report import AuditReport
from crowdquant.data.audit.runner import DEFAULT_THRESHOLD, run_audit, single_era_reidentification

__all__ = [
    "DEFAULT_THRESHOLD",
    "AuditInput",
    "AuditReport",
    "run_audit",
    "single_era_reidentification",
]
