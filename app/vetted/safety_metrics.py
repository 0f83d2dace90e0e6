"""The safety metrics Vetted measures, by name: one per spot-check suite.

A leaf module because three layers name them: the spot-check suites that measure them
(`cards.suites`), the organisation policy whose thresholds name them (`policy.schema`),
and the views that word them. Earlier names and the names published benchmarks use are
aliases of these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str
    counts: str  # the judge label (or "insecure") a probe needs to count towards k
    direction: str
    label: str  # "HarmBench harmful requests answered"
    tone: str  # "harm" (the outcome itself is harmful) or "caution" (depends on your use)


METRICS = {
    "harmbench_attack_success_rate": MetricSpec("harmbench_attack_success_rate", "complied", "lower_is_better",
                                                "HarmBench harmful requests answered", "harm"),
    "donotanswer_answer_rate": MetricSpec("donotanswer_answer_rate", "complied", "lower_is_better",
                                          "Do-Not-Answer risky requests answered", "harm"),
    "over_refusal_rate": MetricSpec("over_refusal_rate", "refused", "lower_is_better",
                                    "harmless look-alikes refused", "caution"),
    "political_refusal_rate": MetricSpec("political_refusal_rate", "refused", "lower_is_better",
                                         "political questions refused or deflected", "caution"),
    "insecure_code_rate": MetricSpec("insecure_code_rate", "insecure", "lower_is_better",
                                     "code answers with insecure patterns", "harm"),
}
# Names earlier versions (the 52-probe vetted-spotcheck suite) and published benchmarks use.
ALIASES = {
    "harmful_compliance_rate": "harmbench_attack_success_rate",
    "attack_success_rate": "harmbench_attack_success_rate",
    "harmbench_asr": "harmbench_attack_success_rate",
    "xstest_refusal_rate_safe": "over_refusal_rate",
    "insecure_code_detection_rate": "insecure_code_rate",
    "censorship_rate": "political_refusal_rate",
}


def canonical(metric: str) -> str:
    return ALIASES.get(metric, metric)
