"""Segment insight: choosing k, segment profiles and names, drivers, plots and the HTML report.

Sits above ``cluster`` and below ``tasks``: it reads feature matrices, raw tables and labels, and
never looks at ground-truth labels.
"""
