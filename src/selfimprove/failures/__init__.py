"""The chapter's other failure modes, each made to happen, watched by a monitor and cured:
error amplification (`facts.py`), distribution shift and forgetting (`shift.py`,
`forgetting.py`), and bias amplification through feedback loops (`feedback.py`)."""
