"""Tournament scores as small pure functions on numpy arrays, batch-first (rows × submissions).

Every stored score carries SCORING_VERSION, so a round can be re-scored and compared later.
"""

SCORING_VERSION = "1.0"
