"""Human oversight: review items and decisions (`queue.py`), the tamper-evident audit log
(`audit.py`), review gates in the loop (`stage.py`), simulated reviewers (`reviewers.py`),
agreement between reviewers (`agreement.py`), exports of reviewed data (`exports.py`) and
the terminal review (`terminal.py`). Loops meet it only through `core/review.py`."""
