"""Tournaments that run by themselves: bot participants, an accelerated clock, the driver that
moves them, and the simulator's record, mechanism checks and report."""
