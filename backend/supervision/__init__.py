"""Supervision (监督): the figures the field reports, 督办, 履职积分 and the monthly export.

- ``stats``: scopes (region, station, deputy), date ranges of China dates, every figure's
  definition as one SQL condition, and the queries that count them (答复率, 办结率, 满意率,
  medians, overdue), with the minimum-sample rule (``STATS_MIN_SAMPLE``).
- ``points``: the 履职积分 rules, as data, and a deputy's points from recorded events.
- ``export``: the month's .xlsx for the 专报, contact details masked, formulas neutralised.

The pages and the JSON API are in ``backend/routes/supervision.py``; 督办 itself is the
lifecycle's ``supervise`` transition (``backend/items/lifecycle.py``).
"""
