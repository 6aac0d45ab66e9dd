"""Alarms: thresholds on metrics, checked every generation, whose action is recorded.

`warn` logs an event; `rollback` discards the candidate and keeps the last good model (the
incumbent, whose metrics passed every alarm); `halt` stops the arm. A metric an evaluation
did not produce this generation (or NaN) never trips an alarm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from selfimprove.core.config import AlarmConfig
from selfimprove.core.records import Metrics

_SEVERITY = {"warn": 0, "rollback": 1, "halt": 2}


@dataclass(frozen=True)
class Trip:
    alarm: AlarmConfig
    value: float

    def describe(self) -> str:
        bound = (
            f"< {self.alarm.below:g}" if self.alarm.below is not None else f"> {self.alarm.above:g}"
        )
        return f"{self.alarm.metric} = {self.value:.4g} {bound} ({self.alarm.action})"


def check_alarms(alarms: tuple[AlarmConfig, ...], metrics: Metrics) -> list[Trip]:
    """The alarms that trip on `metrics`, most severe first."""
    trips = []
    for alarm in alarms:
        value = metrics.get(alarm.metric, math.nan)
        if math.isnan(value):
            continue
        low = alarm.below is not None and value < alarm.below
        high = alarm.above is not None and value > alarm.above
        if low or high:
            trips.append(Trip(alarm, value))
    return sorted(trips, key=lambda trip: -_SEVERITY[trip.alarm.action])
