"""The policy's decision with the monitor's verdict applied: a degraded input means fail-safe.

``decide`` judges the forecast it is given; it cannot know that the forecast was made from a
stale or drifted input. ``decide_monitored`` adds the monitor's reasons to the policy's own
data problems, so the answer is the policy's fail-safe with every reason named
(``FAIL-SAFE: input fng_z_30d (sentiment) has drifted: ...``).
"""

from __future__ import annotations

from collections.abc import Sequence

from cascade_ml.policy import Decision, PolicyConfig, PolicyInputs, decide
from cascade_ml.policy.decide import _fail_safe, data_problems


def decide_monitored(inputs: PolicyInputs, cfg: PolicyConfig,
                     degrade_reasons: Sequence[str]) -> Decision:
    """``decide``, unless the monitor (or the policy itself) found a reason to distrust the
    inputs: then the fail-safe decision with the policy's reasons first, the monitor's after."""
    if not degrade_reasons:
        return decide(inputs, cfg)
    problems = [*data_problems(inputs, cfg), *(f"monitor: {r}" for r in degrade_reasons)]
    # TODO(policy): use a public fail-safe entry point once the policy exposes one
    return _fail_safe(inputs, cfg, problems)
