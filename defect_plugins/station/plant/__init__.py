"""``defect-station plant``: one read-only page over every line's records in a shared database.

:mod:`.figures` computes the per-line figures and the filtered inspections, :mod:`.app` serves them behind
the station's guard and logins, :mod:`.cli` is the command.
"""
